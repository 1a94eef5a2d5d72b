package reqlabels

import (
	"context"
	"net/http"
)

// Handler returns h wrapped so that each request runs under the labels
// route=pattern and method=r.Method (and the trace labels).
//
// Use it per route with the pattern you register:
//
//	mux.Handle("GET /items/{id}", reqlabels.Handler("GET /items/{id}", items))
//
// or use ServeMux, which does that for every route. A middleware around the
// whole mux cannot label the route itself: http.ServeMux finds the pattern
// (and sets Request.Pattern, Go 1.23+) only when it dispatches, after an
// outer middleware has already run.
func Handler(pattern string, h http.Handler) http.Handler {
	return &handler{pattern: pattern, next: h}
}

type handler struct {
	pattern string
	next    http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	do2(r.Context(), func(ctx context.Context) {
		h.next.ServeHTTP(w, r.WithContext(ctx))
	}, Route, h.pattern, Method, r.Method)
}

// HandlerGoroutineOnly is Handler without r.WithContext: the request's
// goroutine (and every goroutine it starts) runs under the labels, but
// r.Context() does not carry them, so a pprof.Do(r.Context(), ...) inside the
// handler replaces them instead of adding to them, and pprof.Label(r.Context(),
// ...) does not see them. It saves the one allocation of r.WithContext (a copy
// of the http.Request), the only allocation Handler makes beyond pprof.Do's own.
func HandlerGoroutineOnly(pattern string, h http.Handler) http.Handler {
	return &goroutineOnly{pattern: pattern, next: h}
}

type goroutineOnly struct {
	pattern string
	next    http.Handler
}

func (h *goroutineOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	do2(r.Context(), func(context.Context) {
		h.next.ServeHTTP(w, r)
	}, Route, h.pattern, Method, r.Method)
}

// ServeMux is an http.ServeMux whose Handle and HandleFunc wrap each handler
// with Handler(pattern, ...), so every request is labelled with the pattern
// that matched it (Go 1.22 patterns such as "GET /items/{id}" included).
// Requests no pattern matches (404, 405, redirects) are not labelled.
type ServeMux struct {
	*http.ServeMux
}

// NewServeMux returns a labelling ServeMux around a new http.ServeMux.
func NewServeMux() *ServeMux { return &ServeMux{http.NewServeMux()} }

// Handle registers Handler(pattern, h) on the underlying mux.
func (m *ServeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, Handler(pattern, h))
}

// HandleFunc registers Handler(pattern, f) on the underlying mux.
func (m *ServeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.ServeMux.Handle(pattern, Handler(pattern, http.HandlerFunc(f)))
}

// Middleware labels each request that mux serves with the pattern mux
// routes it to: it asks mux.Handler(r) for the pattern first, so it costs one
// extra route lookup per request. Prefer ServeMux or Handler when you
// register the routes yourself.
func Middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		do2(r.Context(), func(ctx context.Context) {
			mux.ServeHTTP(w, r.WithContext(ctx))
		}, Route, pattern, Method, r.Method)
	})
}
