package main

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Category sync: goroutines blocked on a Mutex, RWMutex, WaitGroup, Cond or
// Once that nothing will ever release.
var syncKernels = []kernel{
	{
		name: "missing-unlock", calls: 2, run: reconcileAccounts,
		summary: "applyBatch locks the store and returns on a validation error without unlocking; every later reader blocks on Lock",
		sites:   leakAt("sync", "main.(*accountStore).reportBalance", 3),
	},
	{
		name: "double-lock", calls: 3, run: refreshRegistry,
		summary: "Refresh holds the registry's Mutex and calls resolve, which locks it again: the goroutine deadlocks on itself (cockroach)",
		sites:   leakAt("sync", "main.(*registry).resolve", 1),
	},
	{
		name: "lock-order-inversion", calls: 2, run: settleAccounts,
		summary: "transfer(a, b) and transfer(b, a) each lock their source account, then wait for the other's (AB/BA deadlock)",
		sites:   leakAt("sync", "main.transfer", 2),
	},
	{
		name: "rwmutex-upgrade", calls: 3, run: resolveRoute,
		summary: "getOrLoad holds the read lock and calls Lock to fill the cache: a writer waits for its own reader (kubernetes)",
		sites:   leakAt("sync", "main.(*routeCache).getOrLoad", 1),
	},
	{
		name: "waitgroup-never-zero", calls: 3, run: collectNodeStats,
		summary: "a worker returns on its error path without wg.Done(); the goroutine that closes the results after wg.Wait() waits forever",
		sites:   leakAt("sync", "main.gatherStats.func2", 1),
	},
	{
		name: "cond-never-signalled", calls: 2, run: writeBatch,
		summary: "waiters wait on a sync.Cond for the flush; flush fails and returns without Broadcast",
		sites:   leakAt("sync", "main.(*batchWriter).awaitFlush", 2),
	},
	{
		name: "errgroup-no-context", calls: 2, run: reindexShards,
		summary: "an errgroup without a context: the producer task fails and returns without closing the channel, the consumer task ranges forever, and the caller's Wait never returns",
		sites: []site{
			{suffix: "consumer", category: "channel", function: "main.reindexShard.func2", perCall: 1},
			{suffix: "wait", category: "sync", function: "main.(*group).Wait", perCall: 1},
		},
	},
	{
		name: "once-blocks", calls: 2, run: loadCerts,
		summary: "the sync.Once function waits for a fetcher that returned on its error path; every other caller of Do waits for the Once forever",
		sites: []site{
			{suffix: "init", category: "channel", function: "main.(*certLoader).get.func1", perCall: 1},
			{suffix: "waiters", category: "sync", function: "main.(*certLoader).get", perCall: 2},
		},
	},
}

// --- missing-unlock -----------------------------------------------------------------

type accountStore struct {
	mu       sync.Mutex
	balances map[string]int
}

var errNegative = errors.New("balance would go negative")

func reconcileAccounts() {
	s := &accountStore{balances: map[string]int{"alice": 10, "bob": 5}}
	if err := s.applyBatch(map[string]int{"alice": -3, "bob": -9}); err != nil {
		// The batch is rejected; metrics still report the balances.
		for _, name := range []string{"alice", "bob", "carol"} {
			go s.reportBalance(name)
		}
	}
}

func (s *accountStore) applyBatch(deltas map[string]int) error {
	s.mu.Lock()
	for name, d := range deltas {
		if s.balances[name]+d < 0 {
			return fmt.Errorf("%s: %w", name, errNegative)
		}
	}
	for name, d := range deltas {
		s.balances[name] += d
	}
	s.mu.Unlock()
	return nil
}

func (s *accountStore) reportBalance(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.balances[name]
}

// --- double-lock --------------------------------------------------------------------

type registry struct {
	mu       sync.Mutex
	services map[string]string
}

func refreshRegistry() {
	r := &registry{services: map[string]string{"db": "10.0.0.5"}}
	go r.Refresh([]string{"db", "cache"})
}

func (r *registry) Refresh(names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if _, ok := r.resolve(n); !ok {
			r.services[n] = "pending"
		}
	}
}

func (r *registry) resolve(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	addr, ok := r.services[name]
	return addr, ok
}

// --- lock-order-inversion -----------------------------------------------------------

type account struct {
	mu      sync.Mutex
	balance int
}

func settleAccounts() {
	a, b := &account{balance: 100}, &account{balance: 100}
	go transfer(a, b, 10)
	go transfer(b, a, 5)
}

func transfer(from, to *account, amount int) {
	from.mu.Lock()
	defer from.mu.Unlock()
	time.Sleep(50 * time.Millisecond) // fraud check, with the source account locked
	to.mu.Lock()
	defer to.mu.Unlock()
	from.balance -= amount
	to.balance += amount
}

// --- rwmutex-upgrade ----------------------------------------------------------------

type routeCache struct {
	mu     sync.RWMutex
	routes map[string]string
}

func resolveRoute() {
	c := &routeCache{routes: map[string]string{}}
	go c.getOrLoad("/api/v1/users")
}

func (c *routeCache) getOrLoad(path string) string {
	c.mu.RLock()
	if r, ok := c.routes[path]; ok {
		c.mu.RUnlock()
		return r
	}
	c.mu.Lock()
	r := "backend-" + path
	c.routes[path] = r
	c.mu.Unlock()
	c.mu.RUnlock()
	return r
}

// --- waitgroup-never-zero -----------------------------------------------------------

type nodeStat struct {
	node string
	load int
}

func collectNodeStats() {
	_ = gatherStats([]string{"n1", "n2", "n3"})
}

func gatherStats(nodes []string) map[string]int {
	var wg sync.WaitGroup
	results := make(chan nodeStat, len(nodes))
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			s, err := fetchStat(n)
			if err != nil {
				return
			}
			results <- s
			wg.Done()
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	out := map[string]int{}
	timeout := time.After(20 * time.Millisecond)
	for {
		select {
		case s, ok := <-results:
			if !ok {
				return out
			}
			out[s.node] = s.load
		case <-timeout:
			return out
		}
	}
}

func fetchStat(node string) (nodeStat, error) {
	if node == "n2" {
		return nodeStat{}, fmt.Errorf("%s: connection refused", node)
	}
	return nodeStat{node: node, load: len(node)}, nil
}

// --- cond-never-signalled -----------------------------------------------------------

type batchWriter struct {
	mu      sync.Mutex
	cond    *sync.Cond
	items   []string
	flushed bool
}

func writeBatch() {
	b := &batchWriter{items: []string{"a", "b"}}
	b.cond = sync.NewCond(&b.mu)
	for i := 0; i < 2; i++ {
		go b.awaitFlush()
	}
	_ = b.flush()
}

func (b *batchWriter) awaitFlush() {
	b.mu.Lock()
	for !b.flushed {
		b.cond.Wait()
	}
	b.mu.Unlock()
}

func (b *batchWriter) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := writeItems(b.items); err != nil {
		return err
	}
	b.flushed = true
	b.cond.Broadcast()
	return nil
}

func writeItems(items []string) error {
	return fmt.Errorf("write %d items: disk full", len(items))
}

// --- errgroup-no-context ------------------------------------------------------------

// group is errgroup.Group without WithContext: Wait waits for every task, and
// nothing tells the other tasks that one failed.
type group struct {
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.errOnce.Do(func() { g.err = err })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

type document struct {
	shard, n int
}

func reindexShards() {
	_ = reindexShard(3)
}

func reindexShard(shard int) error {
	var g group
	docs := make(chan document)
	indexed := 0
	g.Go(func() error {
		for i := 0; i < 3; i++ {
			d, err := loadDocument(shard, i)
			if err != nil {
				return err
			}
			docs <- d
		}
		close(docs)
		return nil
	})
	g.Go(func() error {
		for d := range docs {
			indexed += d.n
		}
		return nil
	})
	return g.Wait()
}

func loadDocument(shard, i int) (document, error) {
	if i == 1 {
		return document{}, fmt.Errorf("shard %d: document %d: corrupt", shard, i)
	}
	return document{shard: shard, n: i}, nil
}

// --- once-blocks --------------------------------------------------------------------

type certLoader struct {
	once    sync.Once
	fetched chan string
	cert    string
}

func loadCerts() {
	l := &certLoader{fetched: make(chan string)}
	go l.fetch()
	for i := 0; i < 3; i++ {
		go l.serveTLS(i)
	}
}

func (l *certLoader) fetch() {
	pem, err := downloadCert("https://vault.internal/pki/issue")
	if err != nil {
		return
	}
	l.fetched <- pem
}

func downloadCert(url string) (string, error) {
	return "", fmt.Errorf("GET %s: 403 Forbidden", url)
}

func (l *certLoader) get() string {
	l.once.Do(func() {
		l.cert = <-l.fetched
	})
	return l.cert
}

func (l *certLoader) serveTLS(conn int) {
	_ = len(l.get()) + conn
}
