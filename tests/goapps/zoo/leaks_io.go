package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Category io: reads on a pipe or socket that nobody will ever write to or close.
var ioLeaks = []*Leak{
	{
		Kind: "io-socket-read", Category: "io", Endpoint: "/leak/io-socket-read",
		Summary: "a goroutine reads a reply from a TCP peer that never answers, with no deadline",
		run:     socketRead,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.readReply",
			Frames:    []string{"net.(*conn).Read", "bufio.(*Reader).ReadString"},
			CreatedBy: "main.socketRead", States: []string{"IO wait"}})},
	},
	{
		Kind: "io-pipe-read", Category: "io", Endpoint: "/leak/io-pipe-read",
		Summary: "an uploader reads an io.Pipe whose writer returns without Close",
		run:     pipeRead,
		Goroutines: []Accumulating{grows(1, Stack{Function: "main.upload",
			Frames:    []string{"io.(*pipe).read", "io.(*PipeReader).Read", "io.Copy"},
			CreatedBy: "main.pipeRead", States: []string{"select"}, LeakProfile: true})},
	},
}

func socketRead(d *deps, w http.ResponseWriter, r *http.Request) {
	conn, err := net.Dial("tcp", d.silent.addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if _, err := io.WriteString(conn, "PING\n"); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	go readReply(conn) // no SetReadDeadline
	_, _ = io.WriteString(w, "sent\n")
}

func readReply(conn net.Conn) {
	line, err := bufio.NewReader(conn).ReadString('\n')
	_, _ = line, err
	_ = conn.Close()
}

func pipeRead(_ *deps, w http.ResponseWriter, r *http.Request) {
	pr, pw := io.Pipe()
	go upload(pr)
	if _, err := io.WriteString(pw, "part 1\n"); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// missing pw.Close(): the upload never sees io.EOF
	_, _ = io.WriteString(w, "uploading\n")
}

func upload(body io.Reader) {
	_, _ = io.Copy(io.Discard, body)
}
