package adminapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/chromedp/chromedp"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/internal/stacktest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// chromiumPath is Debian's chromium, or $ZL_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ZL_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the dashboard's browser test needs Chromium at %s (apt-get install -y chromium, or set ZL_CHROMIUM): %v", p, err)
	}
	return p
}

// browser starts a headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first action starts the browser, on a context without a deadline (a deadline there
	// would bound the browser's life); the test's actions get one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium (%s): %v", chromiumPath(t), err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// The dashboard, in a real browser against make run's stack with real usage: the charts'
// totals are the acquires and tokens that were consumed.
func TestDashboardInChromium(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{Aggregate: true})
	c, err := client.NewHTTP(st.URL)
	if err != nil {
		t.Fatal(err)
	}
	seedUsage(t, c)

	b := browser(t)
	page := st.URL + "/v1/system/dashboard"
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil || !v.Exists {
			t.Fatalf("%s[%s]: %v (present %v)", sel, name, err, v.Exists)
		}
		return v.Value
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	count := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(b, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return n
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	ready := chromedp.WaitVisible(css(`body[data-state=ready]`))

	// An entity, hourly, the last 24 hours (the defaults).
	if err := chromedp.Do(b,
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`body[data-state=idle]`)), // the script ran under the page's CSP
		chromedp.SendKeys(css(`#id`), "key-1"),
		chromedp.Click(css(`#load`)),
		ready,
	); err != nil {
		t.Fatalf("entity view: %v", err)
	}
	if got := attr(`.chart[data-series=acquires]`, "data-total"); got != "3" {
		t.Fatalf("key-1 acquires chart total %s, want 3", got)
	}
	if got := attr(`.chart[data-series="counter:tpm"]`, "data-total"); got != "2000" {
		t.Fatalf("key-1 tpm chart total %s, want 2000", got)
	}
	if n := count(`document.querySelectorAll('.chart[data-series=acquires] rect.bar').length`); n < 24 || n > 25 {
		t.Fatalf("%d hourly bars for the last 24 hours", n)
	}
	if n := count(`[...document.querySelectorAll('.chart[data-series=acquires] rect.bar')].filter(r => +r.getAttribute('height') > 0).length`); n < 1 {
		t.Fatal("no visible bar")
	}
	if got := text(`#refusals-note`); got == "" {
		t.Fatal("no word on the refusal rate")
	}

	// The resource, all entities, daily over 7 days, from the range picker.
	if err := chromedp.Do(b,
		chromedp.Click(css(`input[name=kind][value=resource]`)),
		chromedp.SetValue(css(`#id`), "gpt-4"),
		chromedp.SetValue(css(`#window`), "daily"),
		chromedp.SetValue(css(`#range`), "7d"),
		chromedp.Click(css(`#load`)),
		chromedp.WaitVisible(css(`.chart h2`)),
		ready,
	); err != nil {
		t.Fatalf("resource view: %v", err)
	}
	waitTotal := func(series, want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			if got := attr(`.chart[data-series="`+series+`"]`, "data-total"); got == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("%s total %s, want %s", series, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitTotal("acquires", "4")
	waitTotal("counter:tpm", "3000")
	if out := os.Getenv("ZL_DASHBOARD_SCREENSHOT"); out != "" { // a look at the page, on request
		png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
		if err != nil || os.WriteFile(out, png, 0o600) != nil {
			t.Fatalf("screenshot: %v", err)
		}
	}
	if got := text(`.stat[data-stat=entities] b`); got != "2" {
		t.Fatalf("entities stat %q", got)
	}
	if n := count(`document.querySelectorAll('.chart[data-series=acquires] rect.bar').length`); n < 7 || n > 8 {
		t.Fatalf("%d daily bars for 7 days", n)
	}

	// A custom range in the past: no usage, said so.
	if err := chromedp.Do(b,
		chromedp.SetValue(css(`#range`), "custom"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.getElementById('query').dispatchEvent(new Event('change'))`)(ctx, tg)
			return err
		}),
		chromedp.SetValue(css(`#from`), "2020-01-01T00:00"),
		chromedp.SetValue(css(`#to`), "2020-01-05T00:00"),
		chromedp.Click(css(`#load`)),
	); err != nil {
		t.Fatalf("custom range: %v", err)
	}
	waitTotal("acquires", "0")
	if got := text(`#status`); !strings.Contains(got, "no usage in this range") {
		t.Fatalf("status %q", got)
	}

	// A shared link loads by itself; an API refusal is shown, not swallowed.
	link := page + "#" + url.Values{"kind": {"entity"}, "id": {"key-2"}, "window": {"hourly"}, "range": {"24h"}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate("about:blank"), chromedp.Navigate(link), ready); err != nil {
		t.Fatalf("shared link: %v", err)
	}
	if got := attr(`.chart[data-series="counter:tpm"]`, "data-total"); got != "1000" {
		t.Fatalf("key-2 tpm %s", got)
	}
	bad := page + "#" + url.Values{"kind": {"entity"}, "id": {"bad#id"}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate("about:blank"), chromedp.Navigate(bad),
		chromedp.WaitVisible(css(`body[data-state=error]`))); err != nil {
		t.Fatalf("bad id: %v", err)
	}
	if got := text(`#status`); !strings.Contains(got, "HTTP 400 invalid_request") {
		t.Fatalf("error shown as %q", got)
	}
}

// seedUsage makes real usage through the API (key-1: 3 acquires, 2000 tpm; key-2: 1 acquire,
// 1000 tpm, all on gpt-4) and waits until the aggregator has folded it into snapshots.
func seedUsage(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	req := func(entity string, tpm int64) limiter.AcquireRequest {
		return limiter.AcquireRequest{EntityID: entity, Resource: "gpt-4",
			Limits:  []limiter.Limit{limiter.PerMinute("rpm", 100), limiter.PerMinute("tpm", 100_000)},
			Consume: map[string]int64{"rpm": 1, "tpm": tpm}}
	}
	for _, r := range []limiter.AcquireRequest{req("key-1", 500), req("key-1", 700), req("key-1", 800), req("key-2", 1000)} {
		if _, err := c.Consume(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		snaps, err := c.Usage(ctx, client.UsageQuery{Resource: "gpt-4", Window: "hourly"})
		if err != nil {
			t.Fatal(err)
		}
		var acq int64
		for _, s := range snaps {
			acq += s.Acquires
		}
		if acq == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator did not record 4 acquires: %+v", snaps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireSigV4 answers 403 to a request without a valid SigV4 signature of creds (service
// execute-api, region), as API Gateway's IAM authorization does before the function runs: the
// signature is computed again from the signed headers and compared.
func requireSigV4(next http.Handler, creds aws.Credentials, region string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deny := func(why string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"message":%q}`, why)
		}
		auth := r.Header.Get("Authorization")
		_, signed, ok := strings.Cut(auth, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if !ok || err != nil {
			deny("Missing Authentication Token")
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		cp, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		for _, h := range strings.Split(signed, ";") {
			if h != "host" {
				cp.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, cp, hex.EncodeToString(sum[:]), "execute-api", region, at); err != nil ||
			cp.Header.Get("Authorization") != auth {
			deny("The request signature we calculated does not match the signature you provided.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Behind IAM authorization (every request's SigV4 signature checked), the dashboard works
// through the signing proxy of `zl proxy`: the page, its script and style, and its API calls.
func TestDashboardBehindIAMThroughSigningProxy(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDOPERATOR", SecretAccessKey: "operator-secret"}
	provider := credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")
	st := stacktest.Start(t, stacktest.Options{Aggregate: true,
		Extra: func(h http.Handler) http.Handler { return requireSigV4(h, creds, "eu-west-1") }})
	unsigned, err := http.Get(st.URL + "/v1/system/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	unsigned.Body.Close()
	if unsigned.StatusCode != http.StatusForbidden {
		t.Fatalf("an unsigned request got %d: the IAM stand-in does not check", unsigned.StatusCode)
	}
	wrong, _ := client.NewHTTP(st.URL, client.WithCredentials(credentials.NewStaticCredentialsProvider(creds.AccessKeyID, "not-the-secret", ""), "eu-west-1"))
	var apiErr *client.Error
	if _, err := wrong.GetEntity(context.Background(), "x"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("a request signed with the wrong secret: %v", err)
	}
	c, err := client.NewHTTP(st.URL, client.WithCredentials(provider, "eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	seedUsage(t, c)
	proxy, err := client.NewSigningProxy(st.URL, provider, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	b := browser(t)
	if err := chromedp.Do(b,
		chromedp.Navigate(front.URL+"/v1/system/dashboard#kind=resource&id=gpt-4&window=hourly&range=24h"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state=ready]`)),
	); err != nil {
		state, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(`#status`)))
		t.Fatalf("dashboard through the proxy: %v (status %q)", err, state)
	}
	v, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS(`.chart[data-series="counter:tpm"]`), "data-total"))
	if err != nil || v.Value != "3000" {
		t.Fatalf("tpm total through the proxy %q, %v", v.Value, err)
	}
}
