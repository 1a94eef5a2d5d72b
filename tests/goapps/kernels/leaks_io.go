package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
)

// Category io: goroutines blocked reading or writing a pipe or a socket that
// the other side never closes, never writes, or never reads.
var ioKernels = []kernel{
	{
		name: "pipe-reader-never-closed", calls: 3, run: backupFiles,
		summary: "the uploader reads the io.Pipe to EOF; the archiver returns on an error without closing the PipeWriter",
		sites:   leakAt("io", "main.uploadArchive.func1", 1),
	},
	{
		name: "pipe-writer-never-read", calls: 2, run: renderReport,
		summary: "the report writer writes into an io.Pipe; the reader checks the header and returns without closing the PipeReader",
		sites:   leakAt("io", "main.streamReport.func1", 1),
	},
	{
		name: "conn-read-no-deadline", calls: 3, run: callLegacyService,
		summary: "a reply reader on a connection to a hung upstream that never answers, with no read deadline",
		sites:   leakAt("io", "main.readReply", 1),
	},
	{
		name: "conn-write-no-deadline", calls: 2, run: pushSnapshot,
		summary: "a 16 MiB snapshot written to a hung upstream that never reads, with no write deadline: the socket buffers fill and Write blocks",
		sites:   leakAt("io", "main.pushSnapshot.func1", 1),
	},
}

// --- pipe-reader-never-closed -------------------------------------------------------

var archivedBytes atomic.Int64

func backupFiles() {
	_ = uploadArchive([]string{"db.sql", "missing.log", "conf.yaml"})
}

func uploadArchive(files []string) error {
	pr, pw := io.Pipe()
	go func() {
		body, _ := io.ReadAll(pr)
		archivedBytes.Add(int64(len(body)))
	}()
	for _, f := range files {
		if err := writeFileTo(pw, f); err != nil {
			return err
		}
	}
	return pw.Close()
}

func writeFileTo(w io.Writer, name string) error {
	if strings.HasPrefix(name, "missing") {
		return fmt.Errorf("open %s: no such file or directory", name)
	}
	_, err := fmt.Fprintf(w, "%s\n%s\n", name, bytes.Repeat([]byte("x"), 64))
	return err
}

// --- pipe-writer-never-read ---------------------------------------------------------

func renderReport() {
	_ = streamReport()
}

func streamReport() error {
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 10; i++ {
			fmt.Fprintf(pw, "row %d\n", i)
		}
		pw.Close()
	}()
	header, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(header, "REPORT") {
		return errors.New("not a report: " + strings.TrimSpace(header))
	}
	return pr.Close()
}

// --- conn-read-no-deadline ----------------------------------------------------------

var repliesRead atomic.Int64

func callLegacyService() {
	conn, err := net.Dial("tcp", hungUpstream.addr())
	if err != nil {
		return
	}
	go readReply(conn)
	_, _ = conn.Write([]byte("STATUS\n"))
}

func readReply(conn net.Conn) {
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		conn.Close()
		return
	}
	repliesRead.Add(int64(n))
}

// --- conn-write-no-deadline ---------------------------------------------------------

var snapshotsPushed atomic.Int64

func pushSnapshot() {
	conn, err := net.Dial("tcp", hungUpstream.addr())
	if err != nil {
		return
	}
	snapshot := make([]byte, 16<<20)
	go func() {
		n, _ := conn.Write(snapshot)
		snapshotsPushed.Add(int64(n))
		conn.Close()
	}()
}
