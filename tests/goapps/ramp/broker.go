package main

import (
	"bufio"
	"log"
	"net"
	"strings"
	"sync"
	"time"
)

// The broker speaks lines: "SUB topic", "PUB topic text", "PING". A PUB goes to every client
// subscribed to the topic ("MSG topic text"); a PING is answered "PONG".
type broker struct {
	mu     sync.Mutex
	topics map[string]map[*brokerClient]struct{}
	all    map[*brokerClient]struct{}
}

type brokerClient struct {
	conn   net.Conn
	out    chan string
	done   chan struct{}
	once   sync.Once
	topics []string
}

func newBroker() *broker {
	return &broker{topics: map[string]map[*brokerClient]struct{}{}, all: map[*brokerClient]struct{}{}}
}

func (b *broker) listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	go b.acceptLoop(ln)
	return ln.Addr().String(), nil
}

func (b *broker) acceptLoop(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("broker: accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c := &brokerClient{conn: conn, out: make(chan string, 64), done: make(chan struct{})}
		b.add(c)
		go b.readLoop(c)
		go c.writeLoop()
	}
}

// readLoop reads the client's commands until it goes away (or the connection breaks), then
// closes the client: its writeLoop returns and the broker forgets it.
func (b *broker) readLoop(c *brokerClient) {
	defer b.drop(c)
	sc := bufio.NewScanner(c.conn)
	for sc.Scan() {
		cmd, rest, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "SUB":
			b.subscribe(c, rest)
		case "PUB":
			topic, text, _ := strings.Cut(rest, " ")
			b.publish(topic, "MSG "+topic+" "+text)
		case "PING":
			c.send("PONG")
		}
	}
}

// writeLoop sends what the broker queued for the client until the client is closed.
func (c *brokerClient) writeLoop() {
	for {
		select {
		case msg := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.conn.Write([]byte(msg + "\n")); err != nil {
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *brokerClient) send(msg string) {
	select {
	case c.out <- msg:
	case <-c.done:
	default: // a slow client loses messages rather than stall the broker
	}
}

func (c *brokerClient) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.conn.Close()
	})
}

func (b *broker) add(c *brokerClient) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all[c] = struct{}{}
}

func (b *broker) subscribe(c *brokerClient, topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	subs := b.topics[topic]
	if subs == nil {
		subs = map[*brokerClient]struct{}{}
		b.topics[topic] = subs
	}
	subs[c] = struct{}{}
	c.topics = append(c.topics, topic)
}

func (b *broker) publish(topic, msg string) {
	b.mu.Lock()
	subs := make([]*brokerClient, 0, len(b.topics[topic]))
	for c := range b.topics[topic] {
		subs = append(subs, c)
	}
	b.mu.Unlock()
	for _, c := range subs {
		c.send(msg)
	}
}

func (b *broker) drop(c *brokerClient) {
	c.close()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.all, c)
	for _, t := range c.topics {
		delete(b.topics[t], c)
		if len(b.topics[t]) == 0 {
			delete(b.topics, t)
		}
	}
}

func (b *broker) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.all)
}
