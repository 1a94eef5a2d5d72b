package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	_ "github.com/lib/pq" // the database/sql driver for PostgreSQL
	"google.golang.org/grpc"
)

// deps are the zoo's real dependencies, all on loopback: two HTTP upstreams, a
// TCP peer that never answers, a gRPC server, and PostgreSQL pools.
type deps struct {
	dsn string

	// leakClient talks to leakUpstream, which answers "Connection: close" and
	// closes its side at once: only the client's side of a leaked connection
	// stays (the client does not notice: it never reads the body).
	leakUpstream string
	leakClient   *http.Client
	// keepClient keeps at most keepConns idle connections to keepUpstream.
	keepUpstream string
	keepClient   *http.Client

	silent *silentPeer

	grpcAddr   string
	sharedGRPC *grpc.ClientConn

	txDB   *sql.DB // begin-without-commit leak; no pool limit
	rowsDB *sql.DB // unclosed-Rows leak; rowsMaxOpen connections
}

const (
	keepConns   = 4
	rowsMaxOpen = 2
)

func startDeps(dsn string) (*deps, error) {
	d := &deps{dsn: dsn}
	var err error
	if d.leakUpstream, err = startUpstream(true); err != nil {
		return nil, err
	}
	if d.keepUpstream, err = startUpstream(false); err != nil {
		return nil, err
	}
	d.leakClient = &http.Client{Transport: &http.Transport{}}
	d.keepClient = &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: keepConns,
		MaxConnsPerHost:     keepConns,
	}}
	if d.silent, err = startSilentPeer(); err != nil {
		return nil, err
	}
	if d.grpcAddr, err = startGRPC(); err != nil {
		return nil, err
	}
	if d.sharedGRPC, err = dialGRPC(d.grpcAddr); err != nil {
		return nil, err
	}
	if dsn != "" {
		if err := d.openDBs(dsn); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// startUpstream serves a small body on a loopback port; closeConns answers
// every request with "Connection: close" (no keep-alive on the server's side).
func startUpstream(closeConns bool) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("upstream listen: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if closeConns {
				w.Header().Set("Connection", "close")
			}
			_, _ = io.WriteString(w, "upstream ok\n")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go serveUpstream(srv, ln)
	return "http://" + ln.Addr().String(), nil
}

func serveUpstream(srv *http.Server, ln net.Listener) {
	_ = srv.Serve(ln)
}

// silentPeer accepts TCP connections and never writes to them; it keeps them
// open, like a stuck backend.
type silentPeer struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func startSilentPeer() (*silentPeer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("silent peer listen: %w", err)
	}
	p := &silentPeer{addr: ln.Addr().String()}
	go p.acceptLoop(ln)
	return p, nil
}

func (p *silentPeer) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
	}
}

func (d *deps) openDBs(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	if d.txDB, err = openDB(ctx, dsn); err != nil {
		return err
	}
	if d.rowsDB, err = openDB(ctx, dsn); err != nil {
		return err
	}
	d.rowsDB.SetMaxOpenConns(rowsMaxOpen)
	_, err = d.txDB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS audit (id bigserial PRIMARY KEY, note text NOT NULL)`)
	if err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	return nil
}

func openDB(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dsn, err)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return db, nil
}
