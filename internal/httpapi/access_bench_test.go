package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

func get(b *testing.B, hc *http.Client, url, token string) (int, time.Duration) {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0)
}

func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3
}

// BenchmarkAccessOverhead measures get-by-id of a 784-dimension record on a
// read socket, through the access checks and, in the same run and
// alternating request by request, on a second socket of the same engine
// whose API skips them. It reports both medians and their difference.
func BenchmarkAccessOverhead(b *testing.B) {
	checked, e, _ := newAccessAPI(b, Options{}, auth.KeyringOptions{})
	unchecked := New(e, Options{})
	unchecked.access.skip = true
	admin := conn(b, "unix:/admin.sock?class=admin")
	if rec := call(checked, admin, "PUT", "/v1/collections/c", `{"dimension":784,"metric":"l2"}`); rec.Code != 201 {
		b.Fatal(rec.Body)
	}
	if rec := call(checked, admin, "POST", "/v1/collections/c/import", string(ndjson784(100, "r")), "Content-Type", "application/x-ndjson"); rec.Code != 200 {
		b.Fatal(rec.Body)
	}
	hcChecked, baseChecked, _ := serveListener(b, checked, "unix:PATH?class=read", nil)
	hcUnchecked, baseUnchecked, _ := serveListener(b, unchecked, "unix:PATH?class=read", nil)
	var withChecks, without []time.Duration
	i := 0
	for b.Loop() {
		path := fmt.Sprintf("/v1/collections/c/records/r%d?vector_b64=1", i%100)
		first, second := hcChecked, hcUnchecked
		firstBase, secondBase := baseChecked, baseUnchecked
		if i%2 == 1 { // alternate which goes first
			first, second, firstBase, secondBase = second, first, secondBase, firstBase
		}
		s1, d1 := get(b, first, firstBase+path, "")
		s2, d2 := get(b, second, secondBase+path, "")
		if s1 != 200 || s2 != 200 {
			b.Fatalf("status %d %d", s1, s2)
		}
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		withChecks, without = append(withChecks, d1), append(without, d2)
		i++
	}
	b.ReportMetric(percentile(withChecks, 0.5), "p50-checked-µs")
	b.ReportMetric(percentile(without, 0.5), "p50-unchecked-µs")
	b.ReportMetric(percentile(withChecks, 0.5)-percentile(without, 0.5), "p50-cost-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRateLimitIsolation measures one key's get-by-id latency on a TCP
// key listener while idle ("idle") and while another key hammers the
// server far past its rate limit from 8 connections ("hammered"), and
// reports p50 and p99 of each.
func BenchmarkRateLimitIsolation(b *testing.B) {
	a, _, kr := newAccessAPI(b, Options{}, auth.KeyringOptions{})
	admin := conn(b, "unix:/admin.sock?class=admin")
	call(a, admin, "PUT", "/v1/collections/c", `{"dimension":784,"metric":"l2"}`)
	call(a, admin, "POST", "/v1/collections/c/import", string(ndjson784(100, "r")), "Content-Type", "application/x-ndjson")
	_, quiet, _ := kr.Create(auth.KeySpec{Name: "quiet", Scope: auth.ClassRead}, time.Now())
	_, noisy, _ := kr.Create(auth.KeySpec{Name: "noisy", Scope: auth.ClassRead, Rate: 10}, time.Now())
	hc, base, _ := serveListener(b, a, "127.0.0.1:0", nil)
	measure := func(b *testing.B) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			status, d := get(b, hc, fmt.Sprintf("%s/v1/collections/c/records/r%d?vector_b64=1", base, i%100), quiet)
			if status != 200 {
				b.Fatalf("quiet key: %d", status)
			}
			lat = append(lat, d)
			i++
		}
		b.ReportMetric(percentile(lat, 0.5), "p50-µs")
		b.ReportMetric(percentile(lat, 0.99), "p99-µs")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("idle", measure)
	b.Run("hammered", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var refused atomic.Int64
		tr := &http.Transport{MaxIdleConnsPerHost: 8}
		defer tr.CloseIdleConnections()
		hammer := &http.Client{Transport: tr}
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/collections/c/records/r1?vector_b64=1", nil)
					req.Header.Set("Authorization", "Bearer "+noisy)
					resp, err := hammer.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusTooManyRequests {
						refused.Add(1)
					}
				}
			})
		}
		time.Sleep(100 * time.Millisecond)
		measure(b)
		cancel()
		wg.Wait()
		b.ReportMetric(float64(refused.Load()), "noisy-429s")
	})
}

// BenchmarkGuardInProcess measures the access checks without the network:
// get-by-id through ServeHTTP with a read-socket identity, checked and
// unchecked, so that their difference is the checks' own cost.
func BenchmarkGuardInProcess(b *testing.B) {
	checked, e, _ := newAccessAPI(b, Options{}, auth.KeyringOptions{})
	admin := conn(b, "unix:/admin.sock?class=admin")
	call(checked, admin, "PUT", "/v1/collections/c", `{"dimension":784,"metric":"l2"}`)
	call(checked, admin, "POST", "/v1/collections/c/import", string(ndjson784(100, "r")), "Content-Type", "application/x-ndjson")
	unchecked := New(e, Options{})
	unchecked.access.skip = true
	ro := conn(b, "unix:/ro.sock?class=read")
	for name, a := range map[string]*API{"checked": checked, "unchecked": unchecked} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v1/collections/c/records/r7?vector_b64=1", nil)
			req = req.WithContext(auth.WithConn(req.Context(), ro))
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Body)
				}
			}
		})
	}
}
