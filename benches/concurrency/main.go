// The upstream and the load generator of `make bench-concurrency` (see docs/benchmarks-concurrency.md).
//
//	concurrency upstream -addr 127.0.0.1:PORT [-chunks K -interval-ms MS -delay-ms MS]
//	    POST /v1/chat/completions: {"stream": true} answers an SSE stream whose shape the request's
//	    "mock_chunks" and "mock_interval_ms" give; each chunk carries its send time (unix ns) in its id, so the
//	    client can tell how long the path took. Otherwise a chat completion after "mock_delay_ms". The flags
//	    stand in for fields a request lacks: a gateway that drops unknown request fields (Bifrost) still gets
//	    the shape the load generator asked for.
//	concurrency streams -url URL -c N -chunks K -interval-ms MS [-ramp-s S] [-prompt-bytes N]
//	concurrency unary -url URL -c N -duration-s S -delay-ms MS
//
// Both load modes print one JSON object on stdout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: concurrency upstream|streams|unary [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "upstream":
		upstream(os.Args[2:])
	case "streams":
		streams(os.Args[2:])
	case "unary":
		unary(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// ---- upstream ----------------------------------------------------------------------------------------

type upstreamRequest struct {
	Stream     bool     `json:"stream"`
	Chunks     *int     `json:"mock_chunks"`
	IntervalMs *float64 `json:"mock_interval_ms"`
	DelayMs    *float64 `json:"mock_delay_ms"`
}

const completion = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris."},` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}`

func upstream(args []string) {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	defChunks := fs.Int("chunks", 0, "chunks per stream when a request has no mock_chunks")
	defIntervalMs := fs.Float64("interval-ms", 0, "interval between chunks when a request has no mock_interval_ms")
	defDelayMs := fs.Float64("delay-ms", 0, "unary latency when a request has no mock_delay_ms")
	_ = fs.Parse(args)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req upstreamRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, `{"error":{"message":"bad json"}}`, 400)
			return
		}
		// Defaults after decoding: json.Unmarshal writes through a non-nil pointer, which would change the flag.
		if req.Chunks == nil {
			req.Chunks = defChunks
		}
		if req.IntervalMs == nil {
			req.IntervalMs = defIntervalMs
		}
		if req.DelayMs == nil {
			req.DelayMs = defDelayMs
		}
		if !req.Stream {
			if *req.DelayMs > 0 {
				time.Sleep(time.Duration(*req.DelayMs * float64(time.Millisecond)))
			}
			w.Header().Set("content-type", "application/json")
			_, _ = w.Write([]byte(completion))
			return
		}
		w.Header().Set("content-type", "text/event-stream")
		flusher := w.(http.Flusher)
		interval := time.Duration(*req.IntervalMs * float64(time.Millisecond))
		next := time.Now()
		var buf bytes.Buffer
		for i := 0; i < *req.Chunks; i++ {
			if interval > 0 {
				next = next.Add(interval)
				time.Sleep(time.Until(next))
			}
			buf.Reset()
			// ~190 bytes, the size of a real one-token chunk.
			fmt.Fprintf(&buf, `data: {"id":"t%d","object":"chat.completion.chunk","created":1700000000,`+
				`"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,`+
				`"finish_reason":null}]}`+"\n\n", time.Now().UnixNano())
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			flusher.Flush()
		}
		_, _ = w.Write([]byte(`data: {"id":"end","object":"chat.completion.chunk","created":1700000000,` +
			`"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}` + "\n\ndata: [DONE]\n\n"))
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	_ = (&http.Server{Handler: handler}).Serve(ln)
}

// ---- load --------------------------------------------------------------------------------------------

func client(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: 0, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}, Timeout: 10 * time.Minute}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func post(c *http.Client, url, key, body string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+key)
	return c.Do(req)
}

// prompt is a user message of n bytes of prose (or "hi").
func prompt(n int) string {
	if n <= 0 {
		return "hi"
	}
	return strings.Repeat("The quick brown fox jumps over the lazy dog. ", n/45+1)[:n]
}

func streams(args []string) {
	fs := flag.NewFlagSet("streams", flag.ExitOnError)
	url := fs.String("url", "", "chat completions URL")
	key := fs.String("key", "bench", "bearer key")
	model := fs.String("model", "gpt-4o", "model")
	conc := fs.Int("c", 100, "concurrent streams")
	chunks := fs.Int("chunks", 100, "chunks per stream")
	intervalMs := fs.Float64("interval-ms", 50, "upstream interval between chunks")
	rampS := fs.Float64("ramp-s", 2, "spread the stream starts over this many seconds")
	promptBytes := fs.Int("prompt-bytes", 0, "the user message's length (0: \"hi\"); agents send tens of KiB")
	_ = fs.Parse(args)
	body := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":%q}],`+
		`"mock_chunks":%d,"mock_interval_ms":%g}`, *model, prompt(*promptBytes), *chunks, *intervalMs)
	c := client(*conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat, gaps []float64 // ms: per chunk (receive time - upstream send time); per stream: its p99 gap
	var errs, received int64
	worstGap := 0.0
	start := time.Now()
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(float64(i) / float64(*conc) * *rampS * float64(time.Second)))
			resp, err := post(c, *url, *key, body)
			if err != nil {
				atomic.AddInt64(&errs, 1)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				atomic.AddInt64(&errs, 1)
				return
			}
			mine := make([]float64, 0, *chunks)
			myGaps := make([]float64, 0, *chunks)
			var last time.Time
			var lastSent int64
			done := false
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Bytes()
				now := time.Now()
				if bytes.HasPrefix(line, []byte(`data: {"id":"t`)) {
					end := bytes.IndexByte(line[len(`data: {"id":"t`):], '"')
					sent, err := strconv.ParseInt(string(line[len(`data: {"id":"t`):len(`data: {"id":"t`)+end]), 10, 64)
					// A screened stream may repeat an id for the text it held back: each upstream chunk counts once.
					if err == nil && sent > lastSent {
						lastSent = sent
						mine = append(mine, float64(now.UnixNano()-sent)/1e6)
						if !last.IsZero() {
							myGaps = append(myGaps, float64(now.Sub(last).Nanoseconds())/1e6)
						}
						last = now
					}
				} else if bytes.Equal(line, []byte("data: [DONE]")) {
					done = true
				}
			}
			if !done || len(mine) != *chunks {
				atomic.AddInt64(&errs, 1)
			}
			sort.Float64s(myGaps)
			mu.Lock()
			lat = append(lat, mine...)
			received += int64(len(mine))
			g := quantile(myGaps, 0.99)
			gaps = append(gaps, g)
			if g > worstGap {
				worstGap = g
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	sort.Float64s(lat)
	out := map[string]any{
		"streams": *conc, "chunks": received, "errors": errs, "seconds": time.Since(start).Seconds(),
		"latency_p50_ms": quantile(lat, 0.5), "latency_p99_ms": quantile(lat, 0.99),
		"latency_max_ms": quantile(lat, 1), "slowest_stream_gap_p99_ms": worstGap,
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func unary(args []string) {
	fs := flag.NewFlagSet("unary", flag.ExitOnError)
	url := fs.String("url", "", "chat completions URL")
	key := fs.String("key", "bench", "bearer key")
	model := fs.String("model", "gpt-4o", "model")
	conc := fs.Int("c", 100, "connections, each one request in flight")
	durS := fs.Float64("duration-s", 5, "measured seconds")
	delayMs := fs.Float64("delay-ms", 250, "upstream latency")
	_ = fs.Parse(args)
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"mock_delay_ms":%g}`, *model, *delayMs)
	c := client(*conc)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []float64
	var errs, completed int64
	statuses := map[string]int{}
	// Warm up: open every connection first (one request each), then measure.
	measureFrom := time.Now().Add(time.Duration(*delayMs*4) * time.Millisecond).Add(time.Second)
	measureTo := measureFrom.Add(time.Duration(*durS * float64(time.Second)))
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := []float64{}
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := post(c, *url, *key, body)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				t1 := time.Now()
				if err == nil && resp.StatusCode == 200 {
					atomic.AddInt64(&completed, 1)
				}
				if t1.After(measureTo) {
					break
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil || resp.StatusCode != 200 {
					atomic.AddInt64(&errs, 1)
					what := "transport"
					if err == nil {
						what = strconv.Itoa(resp.StatusCode)
					}
					mu.Lock()
					statuses[what]++
					mu.Unlock()
					continue
				}
				mine = append(mine, float64(t1.Sub(t0).Nanoseconds())/1e6)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(time.Until(measureTo))
	cancel()
	wg.Wait()
	sort.Float64s(lat)
	out := map[string]any{
		"connections": *conc, "requests": len(lat), "completed": atomic.LoadInt64(&completed), "errors": errs, "rps": float64(len(lat)) / *durS,
		"p50_ms": quantile(lat, 0.5), "p99_ms": quantile(lat, 0.99), "failures": statuses,
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
