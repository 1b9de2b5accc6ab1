package adminapi_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

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
	ctx := context.Background()
	req := func(entity string, tpm int64) limiter.AcquireRequest {
		return limiter.AcquireRequest{EntityID: entity, Resource: "gpt-4",
			Limits:  []limiter.Limit{limiter.PerMinute("rpm", 100), limiter.PerMinute("tpm", 100_000)},
			Consume: map[string]int64{"rpm": 1, "tpm": tpm}}
	}
	for _, tpm := range []int64{500, 700, 800} {
		if _, err := c.Consume(ctx, req("key-1", tpm)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Consume(ctx, req("key-2", 1000)); err != nil {
		t.Fatal(err)
	}
	// Wait for the aggregator to fold the four acquires in.
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
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator did not record 4 acquires: %+v", snaps)
		}
		time.Sleep(200 * time.Millisecond)
	}

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
