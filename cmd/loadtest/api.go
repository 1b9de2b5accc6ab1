package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// answer is one HTTP exchange as a client saw it. Status 0 means no answer arrived (the
// connection failed or was cut): the request may or may not have been applied.
type answer struct {
	Status int
	Body   map[string]any
	Err    error
}

// ambiguous reports whether the caller cannot know if the request was applied.
func (a answer) ambiguous() bool { return a.Status == 0 || a.Status >= 500 }

// contended reports a 429 that says the bucket was too busy to write (nothing was written): the
// contract is to send the call again.
func (a answer) contended() bool {
	return a.Status == 429 && (a.Body["contended"] == true || a.Body["error"] == "contended")
}

// retryAfter is the wait a refusal asks for (retry_after_ms), or fallback.
func (a answer) retryAfter(fallback time.Duration) time.Duration {
	if ms, ok := a.Body["retry_after_ms"].(float64); ok && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return fallback
}

// str returns a string member of the body, "" when absent.
func (a answer) str(key string) string { s, _ := a.Body[key].(string); return s }

// recorder collects every exchange's status and latency, safely from many goroutines.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[int]int
}

func newRecorder() *recorder { return &recorder{statuses: map[int]int{}} }

func (r *recorder) add(status int, d time.Duration) {
	r.mu.Lock()
	r.statuses[status]++
	r.latencies = append(r.latencies, d)
	r.mu.Unlock()
}

// percentile returns the p-th percentile (0 < p ≤ 100) of the latencies recorded.
func (r *recorder) percentile(p float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (r *recorder) snapshot() (map[int]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]int, len(r.statuses))
	n := 0
	for k, v := range r.statuses {
		out[k] = v
		n += v
	}
	return out, n
}

// api calls the local stack's HTTP API (no authorization locally) and records every exchange.
type api struct {
	base string
	http *http.Client
	rec  *recorder
}

// call sends method path with body (nil for none) and decodes a JSON object answer.
func (a *api) call(ctx context.Context, method, path string, body any) answer {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(raw)
	}
	return a.raw(ctx, method, path, rd)
}

// raw sends a request with an arbitrary body (bad-input scenarios).
func (a *api) raw(ctx context.Context, method, path string, body io.Reader) answer {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := a.http.Do(req)
	if err != nil {
		if a.rec != nil {
			a.rec.add(0, time.Since(start))
		}
		return answer{Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if a.rec != nil {
		a.rec.add(resp.StatusCode, time.Since(start))
	}
	if err != nil {
		return answer{Err: fmt.Errorf("reading answer: %w", err)}
	}
	out := answer{Status: resp.StatusCode}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			out.Err = fmt.Errorf("answer %d is not a JSON object: %.200q", resp.StatusCode, raw)
		}
	}
	return out
}

// withRecorder returns a copy of a that records into rec.
func (a *api) withRecorder(rec *recorder) *api { c := *a; c.rec = rec; return &c }
