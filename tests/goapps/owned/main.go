// owned leaks goroutines in code owned by two teams: payments (blocked in the standard
// library's sync.WaitGroup) and search (blocked in a vendored SDK). tests/test_alerts_e2e.py
// has grprof name each leak's owner from package prefixes, walking past the standard library
// and the unowned SDK, and Alertmanager route the alert by that owner.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"time"

	"grprof.test/owned/payments"
	"grprof.test/owned/search"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	rate := flag.Int("rate", 10, "leaks per second, per team")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	go func() {
		t := time.NewTicker(time.Second / time.Duration(*rate))
		defer t.Stop()
		for range t.C {
			payments.Settle()
			search.Query()
		}
	}()
	fmt.Println("READY")
	log.Fatal(http.Serve(ln, nil))
}
