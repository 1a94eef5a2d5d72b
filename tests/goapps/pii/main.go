// pii is a Go service whose pprof labels carry what must never leave it: an e-mail address,
// a bearer token, a URL with a token in its query, a database URL with a password, a request
// UUID and a session JWT. Its /checkout handler leaks a goroutine per request (a result sent
// to a handler that gave up), each under those labels; its own client calls it. grprof with
// redaction on must find the leak without any of the values reaching its store, API, metrics,
// reports or logs (tests/test_redact.py).
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"runtime/pprof"
	"time"
)

// Secrets are the label values; tests/test_redact.py searches for each of them.
var Secrets = pprof.Labels(
	"user", "alice.smith@example.com",
	"auth", "Bearer sk_live_51HxQ2eZvKYlo2C0aBcD",
	"callback", "https://api.example.com/cb?token=s3cr3t-t0ken-value",
	"db", "postgres://app:hunter2pw@db.internal/app",
	"request", "550e8400-e29b-41d4-a716-446655440000",
	"session", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
	"handler", "/checkout",
)

//go:noinline
func charge(result chan<- string) {
	time.Sleep(time.Millisecond)
	result <- "charged" // nobody receives once checkout has returned
}

func checkout(w http.ResponseWriter, r *http.Request) {
	pprof.Do(r.Context(), Secrets, func(ctx context.Context) {
		result := make(chan string)
		go charge(result)
		select {
		case s := <-result:
			fmt.Fprintln(w, s)
		case <-time.After(100 * time.Microsecond):
			http.Error(w, "timeout", http.StatusGatewayTimeout)
		}
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	rate := flag.Int("rate", 20, "requests per second the built-in client sends")
	flag.Parse()
	http.HandleFunc("/checkout", checkout)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Printf("LISTEN %s\n", base)
	go func() {
		t := time.NewTicker(time.Second / time.Duration(*rate))
		for range t.C {
			if resp, err := http.Get(base + "/checkout"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	fmt.Println("READY")
	log.Fatal(http.Serve(ln, nil))
}
