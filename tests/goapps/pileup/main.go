// pileup holds goroutines in idle waits whose counts grow for minutes (tests/test_pileup.py):
// leaks that pile up without ever being woken, beside healthy ramps of connections that
// look the same for a while.
//
//   - sendWebhook: every 10 s a dispatcher (alive all along) starts a sender that POSTs with
//     an http.Client without a timeout to a peer that accepts the connection and never
//     answers. A leak: each sender waits in persistConn.roundTrip's select forever, its
//     connection's readLoop in IO wait and writeLoop in a select, never woken.
//   - consumeUpload: every 8 s a dispatcher (alive all along) starts a consumer reading an
//     io.Pipe whose writer it drops without Close. A leak: the reader waits in the pipe's
//     select forever, never woken.
//   - rampSession: a client opens 30 silent connections over the first 2.5 minutes and holds
//     them. Healthy: each server-side session waits in IO wait, never woken; the count ramps,
//     then holds.
//   - churnSession: a client opens a connection every 8 s for the whole run and closes every
//     third one 40 s later. Healthy: the count rises all along, but sessions leave.
//   - chattySession: a client opens a connection every 10 s for the whole run and writes a
//     line on each every 2 s (pinger). Healthy: the count rises all along with no session
//     leaving, but every session (and pinger) is woken every 2 s.
//
// Protocol on stdout: "LISTEN http://127.0.0.1:PORT", then "READY".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"strings"
	"sync"
	"time"
)

var (
	mu   sync.Mutex
	held []net.Conn // connections kept open without a goroutine each
)

func keep(c net.Conn) {
	mu.Lock()
	held = append(held, c)
	mu.Unlock()
}

// neverAnswer accepts connections and never reads or writes them: the peer that hangs.
func neverAnswer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		keep(c)
	}
}

var client = &http.Client{Transport: &http.Transport{}} // no timeout anywhere

func sendWebhook(url string) {
	resp, err := client.Post(url, "application/json", strings.NewReader(`{"event":"deploy"}`))
	if err == nil {
		resp.Body.Close()
	}
}

func dispatchWebhooks(url string) {
	for range time.Tick(10 * time.Second) {
		go sendWebhook(url)
	}
}

func consumeUpload(r io.Reader) {
	n, _ := io.Copy(io.Discard, r)
	_ = n
}

func dispatchUploads() {
	for range time.Tick(8 * time.Second) {
		r, w := io.Pipe()
		go consumeUpload(r)
		_ = w // the writer is dropped: never written, never closed
	}
}

func echo(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	for {
		if _, err := rd.ReadString('\n'); err != nil {
			return
		}
	}
}

func rampSession(c net.Conn)   { echo(c) }
func churnSession(c net.Conn)  { echo(c) }
func chattySession(c net.Conn) { echo(c) }

func serveSessions(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			kind, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				c.Close()
				return
			}
			switch strings.TrimSpace(kind) {
			case "ramp":
				rampSession(c)
			case "churn":
				churnSession(c)
			default:
				chattySession(c)
			}
		}()
	}
}

// dial opens a session of `kind`: the kind line is sent alone, before anything else, so the
// server reads exactly it (an unbuffered first read).
func dial(addr, kind string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "%s\n", kind); err != nil {
		log.Fatal(err)
	}
	return c
}

func rampClients(addr string) {
	for i := 0; i < 30; i++ {
		keep(dial(addr, "ramp"))
		time.Sleep(5 * time.Second)
	}
}

func churnClients(addr string) {
	for i := 0; ; i++ {
		c := dial(addr, "churn")
		if i%3 == 2 {
			time.AfterFunc(40*time.Second, func() { c.Close() })
		} else {
			keep(c)
		}
		time.Sleep(8 * time.Second)
	}
}

func pinger(c net.Conn) {
	for range time.Tick(2 * time.Second) {
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return
		}
	}
}

func chattyClients(addr string) {
	for range time.Tick(10 * time.Second) {
		go pinger(dial(addr, "chatty"))
	}
}

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "pprof listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	go func() { log.Fatal(http.Serve(ln, nil)) }()
	hang := listen()
	go neverAnswer(hang)
	sessions := listen()
	go serveSessions(sessions)
	go dispatchWebhooks("http://" + hang.Addr().String() + "/hook")
	go dispatchUploads()
	go rampClients(sessions.Addr().String())
	go churnClients(sessions.Addr().String())
	go chattyClients(sessions.Addr().String())
	fmt.Println("READY")
	select {}
}
