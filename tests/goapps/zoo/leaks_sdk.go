package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Category sdk/...: goroutines parked inside a library because a resource was not released.
var sdkLeaks = []*Leak{
	{
		Kind: "http-body-unclosed", Category: "sdk/net/http", Endpoint: "/leak/http-body-unclosed",
		Summary: "an HTTP client response body is never closed: its connection never returns to the pool and keeps its read and write loops",
		run:     bodyUnclosed,
		Goroutines: []Accumulating{
			grows(1, Stack{Frames: []string{"net/http.(*persistConn).readLoop"}, CreatedBy: "net/http.(*Transport).dialConn",
				States: []string{"select"}, Side: "client"}),
			grows(1, writeLoopStack),
		},
	},
	{
		Kind: "sql-tx-unfinished", Category: "sdk/database/sql", Endpoint: "/leak/sql-tx-unfinished",
		Summary: "a transaction begun with a context that never ends is neither committed nor rolled back",
		run:     txUnfinished, needsDB: true,
		Goroutines: []Accumulating{
			grows(1, Stack{Frames: []string{"database/sql.(*Tx).awaitDone"}, CreatedBy: "database/sql.(*DB).beginDC",
				States: []string{"chan receive"}, LeakProfile: true}),
		},
	},
	{
		Kind: "sql-rows-unclosed", Category: "sdk/database/sql", Endpoint: "/leak/sql-rows-unclosed",
		Summary: "query results (Rows) are never closed: each holds a pooled connection, and once the pool (SetMaxOpenConns) is used up every later query waits for a connection forever",
		run:     rowsUnclosed, needsDB: true,
		Goroutines: []Accumulating{
			grows(1, Stack{Function: "main.refreshCache",
				Frames:    []string{"database/sql.(*DB).conn", "database/sql.(*DB).query", "database/sql.(*DB).Query"},
				CreatedBy: "main.rowsUnclosed", States: []string{"select"}}),
		},
		FreeRequests: rowsMaxOpen,
	},
	{
		Kind: "sql-db-unclosed", Category: "sdk/database/sql", Endpoint: "/leak/sql-db-unclosed",
		Summary: "a *sql.DB opened per request and never closed keeps its connectionOpener goroutine (and an idle PostgreSQL connection)",
		run:     dbUnclosed, needsDB: true,
		Goroutines: []Accumulating{
			grows(1, withLeakProfile(connectionOpenerStack)),
		},
	},
	{
		Kind: "grpc-conn-unclosed", Category: "sdk/grpc", Endpoint: "/leak/grpc-conn-unclosed",
		Summary: "a grpc.ClientConn created per request and never closed keeps its transport and balancer goroutines, and the server keeps its side of the connection",
		run:     grpcConnUnclosed,
		Goroutines: []Accumulating{
			grows(3, grpcSerializerStack), grows(1, grpcClientReaderStack), grows(1, grpcClientWriterStack),
			grows(1, grpcServerReaderStack), grows(1, grpcServerWriterStack), grows(1, grpcServerKeepaliveStack),
		},
	},
	{
		Kind: "grpc-stream-undrained", Category: "sdk/grpc", Endpoint: "/leak/grpc-stream-undrained",
		Summary: "a server-streaming RPC on a context that never ends is read once and abandoned: neither drained to io.EOF nor cancelled",
		run:     grpcStreamUndrained,
		Goroutines: []Accumulating{
			grows(1, Stack{Frames: []string{"google.golang.org/grpc.newClientStreamWithParams.func4"},
				CreatedBy: "google.golang.org/grpc.newClientStreamWithParams", States: []string{"select"}, Side: "client"}),
			grows(1, Stack{Function: "main.(*zooServer).Watch",
				Frames:    []string{"google.golang.org/grpc.(*Server).processRPC", "google.golang.org/grpc.(*Server).handleStream"},
				CreatedBy: "google.golang.org/grpc.(*Server).serveStreams.func2", States: []string{"chan receive"}, Side: "server"}),
		},
	},
}

// Stacks that leaked goroutines share with healthy ones (see controls.go).
var (
	writeLoopStack = Stack{Frames: []string{"net/http.(*persistConn).writeLoop"}, CreatedBy: "net/http.(*Transport).dialConn",
		States: []string{"select"}, Side: "client"}
	connectionOpenerStack = Stack{Frames: []string{"database/sql.(*DB).connectionOpener"}, CreatedBy: "database/sql.OpenDB",
		States: []string{"select"}}
	grpcSerializerStack = Stack{Frames: []string{"google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"},
		CreatedBy: "google.golang.org/grpc/internal/grpcsync.NewCallbackSerializer", States: []string{"chan receive"}, Side: "client"}
	grpcClientReaderStack = Stack{Frames: []string{"google.golang.org/grpc/internal/transport.(*http2Client).reader"},
		CreatedBy: "google.golang.org/grpc/internal/transport.NewHTTP2Client", States: []string{"IO wait"}, Side: "client"}
	grpcClientWriterStack = Stack{Frames: []string{"google.golang.org/grpc/internal/transport.(*controlBuffer).get",
		"google.golang.org/grpc/internal/transport.(*loopyWriter).run", "google.golang.org/grpc/internal/transport.NewHTTP2Client.func6"},
		CreatedBy: "google.golang.org/grpc/internal/transport.NewHTTP2Client", States: []string{"select"}, Side: "client"}
	grpcServerReaderStack = Stack{Frames: []string{"google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams",
		"google.golang.org/grpc.(*Server).serveStreams", "google.golang.org/grpc.(*Server).handleRawConn.func1"},
		CreatedBy: "google.golang.org/grpc.(*Server).handleRawConn", States: []string{"IO wait"}, Side: "server"}
	grpcServerWriterStack = Stack{Frames: []string{"google.golang.org/grpc/internal/transport.(*controlBuffer).get",
		"google.golang.org/grpc/internal/transport.(*loopyWriter).run", "google.golang.org/grpc/internal/transport.NewServerTransport.func3"},
		CreatedBy: "google.golang.org/grpc/internal/transport.NewServerTransport", States: []string{"select"}, Side: "server"}
	grpcServerKeepaliveStack = Stack{Frames: []string{"google.golang.org/grpc/internal/transport.(*http2Server).keepalive"},
		CreatedBy: "google.golang.org/grpc/internal/transport.NewServerTransport", States: []string{"select"}, Side: "server"}
)

func withLeakProfile(s Stack) Stack {
	s.LeakProfile = true
	return s
}

func bodyUnclosed(d *deps, w http.ResponseWriter, r *http.Request) {
	resp, err := d.leakClient.Get(d.leakUpstream + "/status")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	// missing defer resp.Body.Close(): only the status matters here
	fmt.Fprintf(w, "upstream said %d\n", resp.StatusCode)
}

func txUnfinished(d *deps, w http.ResponseWriter, r *http.Request) {
	// Detached from the request on purpose (an audit record must survive a
	// client disconnect), so nothing ever cancels it.
	ctx := context.WithoutCancel(r.Context())
	tx, err := d.txDB.BeginTx(ctx, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO audit (note) VALUES ($1) RETURNING id`, r.URL.Path).Scan(&id); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return // missing tx.Rollback()
	}
	// missing tx.Commit(): the "already audited" path returns early
	fmt.Fprintf(w, "audit %d\n", id)
}

func rowsUnclosed(d *deps, w http.ResponseWriter, r *http.Request) {
	go refreshCache(d.rowsDB)
	_, _ = io.WriteString(w, "refresh started\n")
}

// refreshCache reads the first row and returns without rows.Close().
func refreshCache(db *sql.DB) {
	rows, err := db.Query(`SELECT g FROM generate_series(1, 1000) AS g`)
	if err != nil {
		return
	}
	if rows.Next() {
		var first int
		_ = rows.Scan(&first)
	}
}

func dbUnclosed(d *deps, w http.ResponseWriter, r *http.Request) {
	n, err := countAudits(d.dsn)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%d audits\n", n)
}

// countAudits opens its own pool and forgets db.Close().
func countAudits(dsn string) (int64, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return 0, err
	}
	var n int64
	err = db.QueryRow(`SELECT count(*) FROM audit`).Scan(&n)
	return n, err
}

func grpcConnUnclosed(d *deps, w http.ResponseWriter, r *http.Request) {
	cc, err := newGRPCClient(d.grpcAddr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	// missing defer cc.Close()
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	out, err := echo(ctx, cc, "ping")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintln(w, out.GetValue())
}

func grpcStreamUndrained(d *deps, w http.ResponseWriter, r *http.Request) {
	// should be r.Context() (or a context cancelled when done reading)
	stream, err := watch(context.Background(), d.sharedGRPC, "config")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	_ = stream // read the first message only; never drained to io.EOF nor cancelled
	_, _ = io.WriteString(w, "got current config\n")
}
