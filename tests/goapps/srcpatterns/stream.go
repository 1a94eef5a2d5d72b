package main

// produce sends values to a consumer that ranges over out, but never closes out: the
// consumer waits for more values forever.
func produce(values []int) {
	out := make(chan int)
	go func() {
		for v := range out {
			total.Add(int64(v))
		}
	}()
	for _, v := range values {
		out <- v
	}
}

// produceClosed (near-miss) closes out when it is done (here it is still busy).
func produceClosed(values []int, gate <-chan struct{}) {
	out := make(chan int)
	go func() {
		for v := range out {
			total.Add(int64(v))
		}
	}()
	defer close(out)
	for _, v := range values {
		out <- v
	}
	<-gate
}
