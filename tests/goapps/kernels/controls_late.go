package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// Goroutines that finish late: started right after start by setup goroutines
// that return at once (so their creator is gone), blocked 7-19 s on a channel,
// a Mutex, a WaitGroup, a Cond or a Once, then released and gone. Until then
// each keeps its id and its wait in every dump, like a leak would.
var lateControls = []control{
	{
		name: "late-chan-receive", start: startApprovals,
		summary: "three goroutines wait for an approval channel that is closed 13 s after start",
		sites:   []csite{{function: "main.awaitApproval", min: 0, max: 3, releasedAfter: 13}},
	},
	{
		name: "late-mutex", start: startMigration,
		summary: "a migration holds a Mutex for 7 s while two status readers wait in Lock",
		sites: []csite{
			{suffix: "holder", function: "main.(*migration).run", min: 0, max: 1, releasedAfter: 7},
			{suffix: "waiters", function: "main.(*migration).status", min: 0, max: 2, releasedAfter: 7},
		},
	},
	{
		name: "late-once", start: startGeoLookups,
		summary: "a sync.Once loads a database for 8.5 s; two other lookups wait in Once.Do",
		sites: []csite{
			{suffix: "init", function: "main.(*geoDB).load", min: 0, max: 1, releasedAfter: 8.5},
			{suffix: "waiters", function: "main.(*geoDB).lookup", min: 0, max: 2, releasedAfter: 8.5},
		},
	},
	{
		name: "late-chan-send", start: startSnapshotPublishers,
		summary: "two publishers block sending on an unbuffered channel until a consumer drains it 12 s after start",
		sites:   []csite{{function: "main.publishSnapshot", min: 0, max: 2, releasedAfter: 12}},
	},
	{
		name: "late-waitgroup", start: startBackfill,
		summary: "a goroutine waits on a WaitGroup for three backfill workers that finish 14 s after start",
		sites: []csite{
			{suffix: "waiter", function: "main.awaitBackfill", min: 0, max: 1, releasedAfter: 14},
			{suffix: "workers", function: "main.backfillPartition", min: 0, max: 3, releasedAfter: 14},
		},
	},
	{
		name: "late-cond", start: startLeaderGate,
		summary: "two goroutines wait on a sync.Cond broadcast 17.5 s after start, when a leader is elected",
		sites:   []csite{{function: "main.(*leaderGate).wait", min: 0, max: 2, releasedAfter: 17.5}},
	},
	{
		name: "late-select", start: startQuorum,
		summary: "three goroutines select on a votes channel (closed 19 s after start) and an abort channel",
		sites:   []csite{{function: "main.awaitQuorum", min: 0, max: 3, releasedAfter: 19}},
	},
}

var lateDone atomic.Int64

// --- late-chan-receive --------------------------------------------------------------

func startApprovals() error {
	approved := make(chan struct{})
	time.AfterFunc(13*time.Second, func() { close(approved) })
	go requestApprovals(approved)
	return nil
}

func requestApprovals(approved <-chan struct{}) {
	for i := 0; i < 3; i++ {
		go awaitApproval(i, approved)
	}
}

func awaitApproval(change int, approved <-chan struct{}) {
	<-approved
	lateDone.Add(int64(change))
}

// --- late-mutex ---------------------------------------------------------------------

type migration struct {
	mu      sync.Mutex
	version int
}

func startMigration() error {
	go launchMigration(&migration{version: 41})
	return nil
}

func launchMigration(m *migration) {
	go m.run(7 * time.Second)
	time.Sleep(50 * time.Millisecond) // status requests come in while it runs
	for i := 0; i < 2; i++ {
		go m.status()
	}
}

func (m *migration) run(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	time.Sleep(d) // ALTER TABLE
	m.version++
}

func (m *migration) status() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	lateDone.Add(1)
	return m.version
}

// --- late-once ----------------------------------------------------------------------

type geoDB struct {
	once   sync.Once
	ranges map[string]string
}

func startGeoLookups() error {
	go lookupClients(&geoDB{})
	return nil
}

func lookupClients(db *geoDB) {
	for _, ip := range []string{"10.1.2.3", "192.168.0.7", "172.16.4.4"} {
		go db.lookup(ip)
	}
}

func (g *geoDB) lookup(ip string) string {
	g.once.Do(func() { g.load(8500 * time.Millisecond) })
	return g.ranges[ip]
}

func (g *geoDB) load(d time.Duration) {
	time.Sleep(d) // download and parse the database
	g.ranges = map[string]string{"10.1.2.3": "internal"}
}

// --- late-chan-send -----------------------------------------------------------------

func startSnapshotPublishers() error {
	out := make(chan int)
	time.AfterFunc(12*time.Second, func() {
		for i := 0; i < 2; i++ {
			lateDone.Add(int64(<-out))
		}
	})
	go publishSnapshots(out)
	return nil
}

func publishSnapshots(out chan<- int) {
	for i := 0; i < 2; i++ {
		go publishSnapshot(i, out)
	}
}

func publishSnapshot(n int, out chan<- int) {
	out <- n
}

// --- late-waitgroup -----------------------------------------------------------------

func startBackfill() error {
	go launchBackfill()
	return nil
}

func launchBackfill() {
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go backfillPartition(p, 14*time.Second, &wg)
	}
	go awaitBackfill(&wg)
}

func backfillPartition(p int, d time.Duration, wg *sync.WaitGroup) {
	defer wg.Done()
	time.Sleep(d) // copy the partition
	lateDone.Add(int64(p))
}

func awaitBackfill(wg *sync.WaitGroup) {
	wg.Wait()
	lateDone.Add(1)
}

// --- late-cond ----------------------------------------------------------------------

type leaderGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	elected bool
}

func startLeaderGate() error {
	g := &leaderGate{}
	g.cond = sync.NewCond(&g.mu)
	time.AfterFunc(17500*time.Millisecond, g.open)
	go waitForLeader(g)
	return nil
}

func waitForLeader(g *leaderGate) {
	for i := 0; i < 2; i++ {
		go g.wait()
	}
}

func (g *leaderGate) open() {
	g.mu.Lock()
	g.elected = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *leaderGate) wait() {
	g.mu.Lock()
	for !g.elected {
		g.cond.Wait()
	}
	g.mu.Unlock()
	lateDone.Add(1)
}

// --- late-select --------------------------------------------------------------------

func startQuorum() error {
	votes, abort := make(chan struct{}), make(chan struct{})
	time.AfterFunc(19*time.Second, func() { close(votes) })
	go gatherVotes(votes, abort)
	return nil
}

func gatherVotes(votes, abort <-chan struct{}) {
	for i := 0; i < 3; i++ {
		go awaitQuorum(i, votes, abort)
	}
}

func awaitQuorum(member int, votes, abort <-chan struct{}) {
	select {
	case <-votes:
		lateDone.Add(int64(member))
	case <-abort:
	}
}
