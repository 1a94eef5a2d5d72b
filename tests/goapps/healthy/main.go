// healthy is a Go service with plenty of long-lived goroutines and none leaking: a worker
// pool fed by its handler, a periodic background job, bursts of short-lived goroutines and
// idle keep-alive connections to itself. grprof must report no finding on it.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"sync"
	"time"
)

var jobs = make(chan func(), 64)

func worker() {
	for job := range jobs {
		job()
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	done := make(chan struct{})
	jobs <- func() { time.Sleep(time.Millisecond); close(done) }
	<-done
	io.WriteString(w, "ok\n")
}

// burst fans out short-lived work and waits for all of it.
func burst(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(50 * time.Millisecond)
		}()
	}
	wg.Wait()
}

func periodic(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		go burst(20)
	}
}

// client keeps a few idle keep-alive connections to the service itself.
func client(base string, every time.Duration) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	for {
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := c.Get(base + "/work"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		time.Sleep(every)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	pool := flag.Int("pool", 50, "workers in the pool")
	flag.Parse()
	for i := 0; i < *pool; i++ {
		go worker()
	}
	http.HandleFunc("/work", handle)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	go periodic(300 * time.Millisecond)
	go client(base, 200*time.Millisecond)
	fmt.Println("LISTEN " + base)
	fmt.Println("READY")
	log.Fatal(http.Serve(ln, nil))
}
