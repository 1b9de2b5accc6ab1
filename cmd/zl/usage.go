package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zeroae/zae-limiter-go/client"
)

// window is one hourly or daily window, summed over the snapshots of the query.
type window struct {
	Start    time.Time        `json:"window_start"`
	Acquires int64            `json:"acquires"`
	Counters map[string]int64 `json:"counters"`
}

// parseSince reads a duration with a day unit too: 90m, 24h, 7d.
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--since %q: want a duration such as 24h or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: want a duration such as 24h or 7d", s)
	}
	return d, nil
}

// windows sums snapshots by window start and fills the windows between from and to that have
// none with zeros, so that a plot's rows are evenly spaced in time.
func windows(snaps []client.UsageSnapshot, step time.Duration, from, to time.Time) []window {
	by := map[time.Time]*window{}
	for _, s := range snaps {
		w := by[s.WindowStart]
		if w == nil {
			w = &window{Start: s.WindowStart.UTC(), Counters: map[string]int64{}}
			by[s.WindowStart] = w
		}
		w.Acquires += s.Acquires
		for k, v := range s.Counters {
			w.Counters[k] += v
		}
	}
	if !from.IsZero() && to.Sub(from)/step <= 400 {
		for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
			if by[t] == nil {
				by[t] = &window{Start: t.UTC(), Counters: map[string]int64{}}
			}
		}
	}
	out := make([]window, 0, len(by))
	for _, w := range by {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// plotWidth is the widest bar of a plot, in characters.
const plotWidth = 50

// plot draws one series as horizontal bars, one row per window, scaled to the largest value;
// eighth blocks give the bars' ends sub-character precision.
func plot(w io.Writer, title string, ws []window, value func(window) int64, layout string) {
	var peak int64
	for _, x := range ws {
		peak = max(peak, value(x))
	}
	fmt.Fprintf(w, "\n%s (peak %d)\n", title, peak)
	eighths := []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}
	for _, x := range ws {
		v := value(x)
		bar := ""
		if peak > 0 && v > 0 {
			n := v * plotWidth * 8 / peak
			bar = strings.Repeat("█", int(n/8)) + eighths[n%8]
		}
		fmt.Fprintf(w, "%s │%s %d\n", x.Start.Format(layout), bar, v)
	}
}

func usageCommand() *command {
	var (
		entity, resource, win, since, fromS, toS, counter string
		noPlot                                            bool
	)
	return &command{name: "usage", summary: "Show hourly or daily usage of an entity or a resource, with a terminal plot.",
		long: "Usage comes from the aggregator's snapshots: net tokens consumed per limit and net acquires per\n" +
			"window. --entity (optionally with --resource) reads one entity; --resource alone every entity on\n" +
			"that resource, summed per window.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&entity, "entity", "", "entity id")
			fs.StringVar(&resource, "resource", "", "resource (alone: every entity on it)")
			fs.StringVar(&win, "window", "hourly", "hourly or daily")
			fs.StringVar(&since, "since", "", "how far back, such as 24h or 7d (default: a day of hours, 30 days of days)")
			fs.StringVar(&fromS, "from", "", "start of the range (RFC 3339); overrides --since")
			fs.StringVar(&toS, "to", "", "end of the range (RFC 3339; default now)")
			fs.StringVar(&counter, "counter", "", "plot only this limit's tokens (default: acquires and every limit)")
			fs.BoolVar(&noPlot, "no-plot", false, "table only")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if entity == "" && resource == "" {
				return badInput("give --entity, --resource, or both")
			}
			step := time.Hour
			switch win {
			case "hourly":
			case "daily":
				step = 24 * time.Hour
			default:
				return badInput("--window must be hourly or daily, got %q", win)
			}
			to := time.Now().UTC()
			var err error
			if toS != "" {
				if to, err = time.Parse(time.RFC3339, toS); err != nil {
					return badInput("--to %q: want RFC 3339, such as 2026-12-01T00:00:00Z", toS)
				}
			}
			back := 24 * time.Hour
			if step > time.Hour {
				back = 30 * 24 * time.Hour
			}
			if since != "" {
				if back, err = parseSince(since); err != nil {
					return badInput("%v", err)
				}
			}
			from := to.Add(-back)
			if fromS != "" {
				if from, err = time.Parse(time.RFC3339, fromS); err != nil {
					return badInput("--from %q: want RFC 3339, such as 2026-12-01T00:00:00Z", fromS)
				}
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			snaps, err := c.Usage(ctx, client.UsageQuery{EntityID: entity, Resource: resource, Window: win, From: from, To: to})
			if err != nil {
				return err
			}
			ws := windows(snaps, step, from, to)
			names := map[string]bool{}
			for _, x := range ws {
				for k := range x.Counters {
					names[k] = true
				}
			}
			if counter != "" && !names[counter] {
				names[counter] = true
			}
			cols := make([]string, 0, len(names))
			for k := range names {
				if counter == "" || k == counter {
					cols = append(cols, k)
				}
			}
			sort.Strings(cols)
			layout, unit := "2006-01-02 15:04", "hour"
			if step > time.Hour {
				layout, unit = "2006-01-02", "day"
			}
			return a.emit(map[string]any{"window": win, "from": from, "to": to, "windows": ws, "snapshots": snaps}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "WINDOW (UTC)\tACQUIRES\t%s\n", strings.ToUpper(strings.Join(cols, "\t")))
				for _, x := range ws {
					row := []string{x.Start.Format(layout), strconv.FormatInt(x.Acquires, 10)}
					for _, k := range cols {
						row = append(row, strconv.FormatInt(x.Counters[k], 10))
					}
					fmt.Fprintln(w, strings.Join(row, "\t"))
				}
				_ = w.Flush()
				if noPlot {
					return
				}
				if counter == "" {
					plot(a.stdout, "acquires per "+unit, ws, func(x window) int64 { return x.Acquires }, layout)
				}
				for _, k := range cols {
					plot(a.stdout, k+" tokens per "+unit, ws, func(x window) int64 { return x.Counters[k] }, layout)
				}
			})
		}}
}
