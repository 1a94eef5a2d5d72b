// ramp is a HEALTHY Go service under a load ramp: nothing in it leaks, yet its goroutine count
// follows its clients up and down. grprof must not call any of it a leak.
//
// The service (default mode) runs, besides net/http/pprof on -addr:
//
//   - a TCP message broker (broker.go): per connected client, one readLoop goroutine and one
//     writeLoop goroutine, the writeLoop waiting on the client's outgoing channel in a select
//     with its done channel;
//   - a gRPC service with a server-streaming Subscribe (feed.go): one handler goroutine per
//     stream, plus gRPC's transport goroutines per connection;
//   - an HTTP/1.1 API with keep-alive connections (api.go): one conn.serve goroutine per
//     connection, idle between requests.
//
// GET /ramp/addrs gives the three addresses, GET /ramp/stats the live clients of each kind and
// the goroutine count.
//
// -mode drive -target BASE (driver.go) is the client side, in another process: it ramps its
// clients from -min to -max and back (-warm, -up, -hold, -down), spread over the three kinds;
// half of the clients stay connected, the others reconnect every few seconds.
//
// Protocol on stdout (both modes): "LISTEN http://127.0.0.1:PORT" (service), then "READY".
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"time"
)

type addrs struct {
	Broker string `json:"broker"`
	GRPC   string `json:"grpc"`
	API    string `json:"api"`
}

func main() {
	mode := flag.String("mode", "serve", "serve (the service) or drive (the clients)")
	addr := flag.String("addr", "127.0.0.1:0", "pprof and control address (serve)")
	target := flag.String("target", "", "the service's base URL (drive)")
	var p rampPlan
	flag.IntVar(&p.Min, "min", 5, "clients before and after the ramp (drive)")
	flag.IntVar(&p.Max, "max", 200, "clients at the top of the ramp (drive)")
	flag.DurationVar(&p.Warm, "warm", 20*time.Second, "time at -min before the ramp (drive)")
	flag.DurationVar(&p.Up, "up", 70*time.Second, "ramp up (drive)")
	flag.DurationVar(&p.Hold, "hold", 30*time.Second, "time at -max (drive)")
	flag.DurationVar(&p.Down, "down", 70*time.Second, "ramp down (drive)")
	flag.Float64Var(&p.Churn, "churn", 0.5, "share of clients that reconnect every few seconds (drive)")
	flag.Int64Var(&p.Seed, "seed", 1, "random seed (drive)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	switch *mode {
	case "serve":
		serve(*addr)
	case "drive":
		if *target == "" {
			log.Fatal("-mode drive needs -target BASE_URL")
		}
		drive(*target, p)
	default:
		fmt.Fprintf(os.Stderr, "unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}

func serve(addr string) {
	b := newBroker()
	brokerAddr, err := b.listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	grpcAddr, err := startFeed("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	apiAddr, err := startAPI("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	a := addrs{Broker: brokerAddr, GRPC: grpcAddr, API: apiAddr}
	http.HandleFunc("/ramp/addrs", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a)
	})
	http.HandleFunc("/ramp/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]int64{
			"broker_clients": int64(b.size()),
			"grpc_streams":   feedStreams.Load(),
			"api_conns":      apiConns.Load(),
			"api_requests":   apiRequests.Load(),
			"goroutines":     int64(runtime.NumGoroutine()),
		})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("LISTEN http://" + ln.Addr().String())
	fmt.Println("READY")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
