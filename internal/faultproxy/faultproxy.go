// Package faultproxy is an HTTP proxy for the DynamoDB JSON protocol that injects the faults a
// real network and a real DynamoDB produce, at rates chosen per kind, in front of a real server
// (DynamoDB Local). The limiter's process points AWS_ENDPOINT_URL_DYNAMODB at the proxy; the
// SDK in that process sees exactly what it would see in AWS, and retries as it would there.
//
// Kinds (see Kind):
//
//   - lost: the request is forwarded and applied, then the connection is closed without an
//     answer. The SDK cannot tell whether the write happened and resends it.
//   - error: a 500 InternalServerError, the request not applied.
//   - throttle: a 400 ThrottlingException, the request not applied.
//   - conflict: a 400 TransactionConflictException for TransactWriteItems, not applied.
//   - delay: the request is held for Delay before it is forwarded (a slow network).
//
// Faults are drawn independently per request from a seeded source, so a run can be repeated.
// Requests that only read (GetItem, Query, …) can be spared with Config.WritesOnly.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names one fault.
type Kind string

// The faults a Proxy injects.
const (
	Lost     Kind = "lost"
	Error    Kind = "error"
	Throttle Kind = "throttle"
	Conflict Kind = "conflict"
	Delay    Kind = "delay"
)

// Kinds returns every Kind, in the order rates are drawn.
func Kinds() []Kind { return []Kind{Lost, Error, Throttle, Conflict, Delay} }

// Config says where to forward and how often each fault happens.
type Config struct {
	// Upstream is the DynamoDB endpoint requests are forwarded to, e.g. http://127.0.0.1:8000.
	Upstream string
	// Rates is the probability of each fault per request, each in [0, 1]; their sum at most 1.
	Rates map[Kind]float64
	// Delay is how long a Delay fault holds a request (default 200 ms).
	Delay time.Duration
	// WritesOnly spares every operation that cannot change the table (reads, DescribeTable…).
	WritesOnly bool
	// Seed makes the sequence of faults repeatable.
	Seed uint64
}

// ParseRates parses "lost=0.1,error=0.05" into rates, rejecting unknown kinds, values outside
// [0, 1] and a sum above 1.
func ParseRates(s string) (map[Kind]float64, error) {
	rates := map[Kind]float64{}
	if strings.TrimSpace(s) == "" {
		return rates, nil
	}
	known := map[Kind]bool{}
	for _, k := range Kinds() {
		known[k] = true
	}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("fault %q: want kind=rate", part)
		}
		k := Kind(strings.TrimSpace(name))
		if !known[k] {
			return nil, fmt.Errorf("fault %q: unknown kind (want one of %v)", name, Kinds())
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("fault %s: rate %q is not a number in [0, 1]", k, value)
		}
		rates[k] = r
	}
	if err := checkRates(rates); err != nil {
		return nil, err
	}
	return rates, nil
}

// checkRates rejects a rate outside [0, 1] and rates summing above 1.
func checkRates(rates map[Kind]float64) error {
	sum := 0.0
	for k, r := range rates {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("fault %s: rate %g is not a number in [0, 1]", k, r)
		}
		sum += r
	}
	if sum > 1 {
		return fmt.Errorf("fault rates sum to %g, more than 1", sum)
	}
	return nil
}

// Proxy forwards DynamoDB requests and injects faults. Its zero value is not usable: call New.
type Proxy struct {
	cfg    Config
	client *http.Client
	paused atomic.Bool

	mu       sync.Mutex
	rng      *rand.Rand
	injected map[string]int // "kind op" → count
}

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if cfg.Upstream == "" {
		return nil, fmt.Errorf("faultproxy: no upstream")
	}
	if err := checkRates(cfg.Rates); err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 200 * time.Millisecond
	}
	return &Proxy{
		cfg:      cfg,
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		injected: map[string]int{},
	}, nil
}

// SetPaused stops (true) or resumes (false) injecting faults; requests are forwarded either
// way. Use it to keep faults out of a test's setup.
func (p *Proxy) SetPaused(paused bool) { p.paused.Store(paused) }

// readOnly are the operations that never change the table.
func readOnly(op string) bool {
	switch op {
	case "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
		"DescribeTimeToLive", "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams":
		return true
	}
	return false
}

// draw picks the fault for one request of operation op ("" for none) and counts it.
func (p *Proxy) draw(op string) Kind {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused.Load() || (p.cfg.WritesOnly && readOnly(op)) {
		return ""
	}
	x := p.rng.Float64()
	for _, k := range Kinds() {
		r := p.cfg.Rates[k]
		if k == Conflict && op != "TransactWriteItems" {
			// Only transactions conflict; the draw still consumes its share so the other
			// kinds keep their rates.
			if x < r {
				return ""
			}
			x -= r
			continue
		}
		if x < r {
			p.injected[string(k)+" "+op]++
			return k
		}
		x -= r
	}
	return ""
}

// Injected returns how many faults of each kind were injected, by "kind operation".
func (p *Proxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

// InjectedByKind sums Injected over operations.
func (p *Proxy) InjectedByKind() map[Kind]int {
	out := map[Kind]int{}
	for k, v := range p.Injected() {
		kind, _, _ := strings.Cut(k, " ")
		out[Kind(kind)] += v
	}
	return out
}

// ServeHTTP forwards one request, injecting the fault drawn for it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	op := operation(r.Header.Get("X-Amz-Target"))
	switch p.draw(op) {
	case Error:
		awsError(w, http.StatusInternalServerError, "InternalServerError", "injected by faultproxy: not applied")
		return
	case Throttle:
		awsError(w, http.StatusBadRequest, "ThrottlingException", "injected by faultproxy: rate of requests exceeds the allowed throughput")
		return
	case Conflict:
		awsError(w, http.StatusBadRequest, "TransactionConflictException", "injected by faultproxy: transaction is ongoing for the item")
		return
	case Delay:
		select {
		case <-time.After(p.cfg.Delay):
		case <-r.Context().Done():
			return
		}
	case Lost:
		resp, err := p.forward(r, body)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		hangUp(w)
		return
	}
	resp, err := p.forward(r, body)
	if err != nil {
		awsError(w, http.StatusBadGateway, "InternalServerError", "faultproxy: upstream: "+err.Error())
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends the request, unchanged (the SigV4 signature stays valid: the host header is
// kept), to the upstream.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimRight(p.cfg.Upstream, "/")+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	return p.client.Do(req)
}

// hangUp closes the client's connection without writing a response: what a client sees when
// the answer is lost on the way back.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as when a middlebox drops the connection
	}
	conn.Close()
}

// awsError writes an error in the DynamoDB JSON protocol's shape.
func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, msg)
}

// operation extracts the operation from X-Amz-Target ("DynamoDB_20120810.UpdateItem").
func operation(target string) string {
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	return target
}
