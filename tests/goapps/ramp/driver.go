package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"math/rand"
	"net"
	"net/http"
	"time"
)

// rampPlan: -min clients for Warm, up to -max over Up, Hold there, back to -min over Down,
// then -min for good.
type rampPlan struct {
	Min, Max             int
	Warm, Up, Hold, Down time.Duration
	Churn                float64
	Seed                 int64
}

func (p rampPlan) clients(t time.Duration) int {
	span := float64(p.Max - p.Min)
	switch {
	case t < p.Warm:
		return p.Min
	case t < p.Warm+p.Up:
		return p.Min + int(math.Round(span*float64(t-p.Warm)/float64(p.Up)))
	case t < p.Warm+p.Up+p.Hold:
		return p.Max
	case t < p.Warm+p.Up+p.Hold+p.Down:
		return p.Max - int(math.Round(span*float64(t-p.Warm-p.Up-p.Hold)/float64(p.Down)))
	}
	return p.Min
}

var kinds = []string{"broker", "grpc", "api"}

type slot struct {
	kind   string
	cancel context.CancelFunc
}

// drive keeps as many clients as the plan says, of the three kinds in turn; the clients that
// go when the ramp falls are picked at random.
func drive(base string, p rampPlan) {
	a := fetchAddrs(base)
	rng := rand.New(rand.NewSource(p.Seed))
	var slots []slot
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	ready, lastLog, n := false, time.Duration(-1), 0
	for {
		t := time.Since(start)
		want := p.clients(t)
		for len(slots) < want {
			ctx, cancel := context.WithCancel(context.Background())
			kind := kinds[n%len(kinds)]
			churn := rng.Float64() < p.Churn
			go runClient(ctx, kind, a, churn, p.Seed*1000+int64(n))
			slots = append(slots, slot{kind, cancel})
			n++
		}
		for len(slots) > want {
			i := rng.Intn(len(slots))
			slots[i].cancel()
			slots[i] = slots[len(slots)-1]
			slots = slots[:len(slots)-1]
		}
		if !ready {
			fmt.Println("READY")
			ready = true
		}
		if t-lastLog >= 5*time.Second {
			lastLog = t
			log.Printf("t=%.0fs clients=%d", t.Seconds(), len(slots))
		}
		<-tick.C
	}
}

func fetchAddrs(base string) addrs {
	var a addrs
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/ramp/addrs")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err == nil {
				return a
			}
		}
		if i == 50 {
			log.Fatalf("cannot read %s/ramp/addrs: %v", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runClient connects, and reconnects after a while when it churns, until ctx ends.
func runClient(ctx context.Context, kind string, a addrs, churn bool, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	topic := fmt.Sprintf("topic-%d", seed%7)
	for ctx.Err() == nil {
		life, cancel := ctx, context.CancelFunc(func() {})
		if churn {
			life, cancel = context.WithTimeout(ctx, time.Duration(4000+rng.Intn(16000))*time.Millisecond)
		}
		var err error
		switch kind {
		case "broker":
			err = chat(life, a.Broker, topic, rng)
		case "grpc":
			err = subscribe(life, a.GRPC, topic)
		case "api":
			err = poll(life, a.API, rng)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Printf("%s client: %v", kind, err)
		}
		if !sleepCtx(ctx, time.Duration(200+rng.Intn(800))*time.Millisecond) {
			return
		}
	}
}

// chat is a broker client: it subscribes to a topic, reads what comes, and publishes now and
// then, until ctx ends; then it closes the connection.
func chat(ctx context.Context, addr, topic string, rng *rand.Rand) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := fmt.Fprintf(conn, "SUB %s\n", topic); err != nil {
		return err
	}
	gone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
		}
		gone <- sc.Err()
	}()
	for {
		if !sleepCtx(ctx, time.Duration(500+rng.Intn(1500))*time.Millisecond) {
			return nil
		}
		if _, err := fmt.Fprintf(conn, "PUB %s hello\n", topic); err != nil {
			return err
		}
		select {
		case err := <-gone:
			return fmt.Errorf("broker closed the connection: %v", err)
		default:
		}
	}
}
