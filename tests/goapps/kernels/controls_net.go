package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connections that stay open between two ends in this process: a TCP echo
// server with its clients (per-connection read loops and heartbeats), an HTTP
// server polled over keep-alive connections, and a hung upstream that the io
// leak kernels call.
var netControls = []control{
	{
		name: "tcp-echo", start: startEcho,
		summary: "a TCP echo server (accept loop, one read loop per connection) and four clients connected to it, each with a read loop and a heartbeat every second",
		sites: []csite{
			{suffix: "accept", function: "main.(*echoServer).acceptLoop", min: 1, max: 1},
			{suffix: "server-conns", function: "main.(*echoServer).serveConn", min: 4, max: 4},
			{suffix: "client-readers", function: "main.(*echoClient).readLoop", min: 4, max: 4},
			{suffix: "client-heartbeats", function: "main.(*echoClient).heartbeat", min: 4, max: 4},
		},
	},
	{
		name: "http-keepalive", start: startStatusAPI,
		summary: "an http.Server polled every second by three clients with their own Transport over keep-alive connections (plus the pprof server's own connections while it is scraped)",
		sites: []csite{
			{suffix: "accept", function: "main.serveStatusAPI", min: 1, max: 1},
			{suffix: "pollers", function: "main.(*statusPoller).run", min: 3, max: 3},
			{suffix: "server-conns", function: "net/http.(*conn).serve", min: 3, max: 8},
			{suffix: "client-readloops", function: "net/http.(*persistConn).readLoop", min: 3, max: 3},
			{suffix: "client-writeloops", function: "net/http.(*persistConn).writeLoop", min: 3, max: 3},
		},
	},
	{
		name: "hung-upstream", start: startHungUpstream,
		summary: "the accept loop of an upstream that accepts connections and then never reads or answers (the io kernels' peer)",
		sites:   liveAt("main.(*upstream).acceptLoop", 1, 1),
	},
}

// --- tcp-echo -----------------------------------------------------------------------

type echoServer struct {
	ln    net.Listener
	lines atomic.Int64
}

func startEcho() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("echo listen: %w", err)
	}
	s := &echoServer{ln: ln}
	go s.acceptLoop()
	go connectEchoClients(ln.Addr().String(), 4)
	return nil
}

func (s *echoServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.serveConn(c)
	}
}

func (s *echoServer) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		s.lines.Add(1)
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
}

type echoClient struct {
	conn  net.Conn
	pongs atomic.Int64
}

func connectEchoClients(addr string, n int) {
	for i := 0; i < n; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		c := &echoClient{conn: conn}
		go c.readLoop()
		go c.heartbeat(time.Second)
	}
}

func (c *echoClient) readLoop() {
	r := bufio.NewReader(c.conn)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		c.pongs.Add(1)
	}
}

func (c *echoClient) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	defer c.conn.Close()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := io.WriteString(c.conn, "ping\n"); err != nil {
				return
			}
		}
	}
}

// --- http-keepalive -----------------------------------------------------------------

type statusPoller struct {
	url    string
	client *http.Client
	ok     atomic.Int64
}

func startStatusAPI() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("status listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go serveStatusAPI(srv, ln)
	for _, svc := range []string{"billing", "search", "mail"} {
		p := &statusPoller{
			url:    "http://" + ln.Addr().String() + "/status?from=" + svc,
			client: &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second},
		}
		if err := p.poll(); err != nil {
			return err
		}
		go p.run(time.Second)
	}
	return nil
}

func serveStatusAPI(srv *http.Server, ln net.Listener) {
	_ = srv.Serve(ln)
}

func (p *statusPoller) run(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			p.client.CloseIdleConnections()
			return
		case <-t.C:
			_ = p.poll()
		}
	}
}

func (p *statusPoller) poll() error {
	resp, err := p.client.Get(p.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	p.ok.Add(1)
	return nil
}

// --- hung-upstream ------------------------------------------------------------------

// upstream accepts connections and keeps them open without ever reading or
// writing: a service that hangs.
type upstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

var hungUpstream = &upstream{}

func startHungUpstream() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("upstream listen: %w", err)
	}
	hungUpstream.ln = ln
	go hungUpstream.acceptLoop()
	return nil
}

func (u *upstream) addr() string {
	return u.ln.Addr().String()
}

func (u *upstream) acceptLoop() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.mu.Unlock()
	}
}
