package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// tryFlags are the flags of available and acquire: which bucket, with which limits.
type tryFlags struct {
	entity, resource string
	specs            stringList
	stored           bool
}

func (t *tryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.entity, "entity", "", "entity id (required)")
	fs.StringVar(&t.resource, "resource", "", "resource (required)")
	fs.Var(&t.specs, "limit", "NAME=RATE/PERIOD[,burst=N] (repeatable); with --stored, the fallback")
	fs.BoolVar(&t.stored, "stored", false, "use the stored limits (entity+resource, entity, resource, system default)")
}

func (t *tryFlags) limits() ([]wire.Limit, error) {
	if t.entity == "" || t.resource == "" {
		return nil, badInput("--entity and --resource are required")
	}
	if len(t.specs) == 0 && !t.stored {
		return nil, badInput("give the limits with --limit, or --stored")
	}
	var ls []wire.Limit
	for _, s := range t.specs {
		l, err := parseLimit(s)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func availableCommand() *command {
	var t tryFlags
	return &command{name: "available", summary: "Show the tokens available now in each limit of an entity+resource (takes nothing).",
		flags: t.register,
		run: func(ctx context.Context, a *app, args []string) error {
			ls, err := t.limits()
			if err != nil {
				return err
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			av, err := c.Available(ctx, wire.AvailableRequest{EntityID: t.entity, Resource: t.resource, Limits: ls, UseStoredLimits: t.stored})
			if err != nil {
				return err
			}
			names := make([]string, 0, len(av))
			for n := range av {
				names = append(names, n)
			}
			sort.Strings(names)
			return a.emit(map[string]any{"entity_id": t.entity, "resource": t.resource, "available": av}, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "LIMIT\tAVAILABLE")
				for _, n := range names {
					fmt.Fprintf(w, "%s\t%d\n", n, av[n])
				}
			})
		}}
}

func acquireCommand() *command {
	var (
		t       tryFlags
		consume stringList
	)
	return &command{name: "acquire", summary: "Take tokens from an entity+resource for good (exit 3 when refused).",
		long: "A committed acquire: the tokens are consumed at once and no lease is kept. A refusal consumes\n" +
			"nothing, prints every limit's status and exits 3.",
		flags: func(fs *flag.FlagSet) {
			t.register(fs)
			fs.Var(&consume, "consume", "NAME=TOKENS to take (repeatable; default 1 of each --limit)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			ls, err := t.limits()
			if err != nil {
				return err
			}
			amounts := map[string]int64{}
			for _, kv := range consume {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if !ok || err != nil || n < 0 {
					return badInput("--consume %q: want NAME=TOKENS, TOKENS a whole number ≥ 0", kv)
				}
				amounts[k] = n
			}
			if len(consume) == 0 {
				for _, l := range ls {
					amounts[l.Name] = 1
				}
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			statuses, err := c.Consume(ctx, wire.AcquireRequest{EntityID: t.entity, Resource: t.resource, Limits: ls,
				UseStoredLimits: t.stored, Consume: amounts})
			granted := err == nil
			var rle *wire.RateLimitExceededError
			if errors.As(err, &rle) {
				statuses = rle.Statuses
			} else if err != nil {
				return err
			}
			body := map[string]any{"granted": granted, "statuses": wire.StatusesJSON(statuses)}
			if rle != nil {
				body["retry_after_ms"] = rle.RetryAfter.Milliseconds()
			}
			if eerr := a.emit(body, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ENTITY\tLIMIT\tAVAILABLE\tCAPACITY\tREQUESTED\tEXCEEDED\tRETRY AFTER")
				for _, s := range statuses {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%v\t%s\n", s.EntityID, s.Limit.Name, s.Available, s.Limit.Capacity, s.Requested, s.Exceeded, s.RetryAfter)
				}
			}); eerr != nil {
				return eerr
			}
			return err
		}}
}
