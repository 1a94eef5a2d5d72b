// Package sdk stands for a vendored client library no team here owns: grprof's owner walk
// skips its frames (configured as `unowned`) on the way to the code that called it.
package sdk

// Client waits for replies on a channel its caller hands it.
type Client struct{ replies chan int }

// New returns a client reading replies from ch.
func New(ch chan int) *Client { return &Client{replies: ch} }

// Await blocks until a reply arrives: forever, when nobody ever sends one.
//
//go:noinline
func (c *Client) Await() int { return <-c.replies }
