package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// defaultResource is the reserved resource that names an entity's default limits.
const defaultResource = "_default_"

// scopeFlags selects a scope of stored limits: --entity and --resource, --entity alone (the
// entity default), --resource alone (the resource default) or --system.
type scopeFlags struct {
	entity, resource string
	system           bool
}

func (s *scopeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.entity, "entity", "", "entity id (with --resource: its limits for that resource; alone: its default)")
	fs.StringVar(&s.resource, "resource", "", "resource (alone: the resource default)")
	fs.BoolVar(&s.system, "system", false, "the system default")
}

func (s *scopeFlags) scope() (wire.Scope, error) {
	switch {
	case s.system && (s.entity != "" || s.resource != ""):
		return wire.Scope{}, badInput("--system cannot be combined with --entity or --resource")
	case s.system:
		return wire.SystemDefault(), nil
	case s.entity == "" && s.resource == "":
		return wire.Scope{}, badInput("name a scope: --entity, --resource, both, or --system")
	case s.resource == defaultResource:
		return wire.EntityDefault(s.entity), nil
	}
	return wire.Scope{EntityID: s.entity, Resource: s.resource}, nil
}

// scopeName is how a scope is shown: system, resource:R, entity:E, entity:E/resource:R.
func scopeName(sc wire.Scope) string {
	switch {
	case sc.EntityID != "" && sc.Resource != "":
		return "entity:" + sc.EntityID + "/resource:" + sc.Resource
	case sc.EntityID != "":
		return "entity:" + sc.EntityID
	case sc.Resource != "":
		return "resource:" + sc.Resource
	}
	return "system"
}

// parseLimit reads NAME=RATE/PERIOD[,burst=N]: RATE tokens per PERIOD (second, minute, hour,
// day or a Go duration such as 90s), refilled continuously, holding at most burst (default
// RATE).
func parseLimit(s string) (wire.Limit, error) {
	name, spec, ok := strings.Cut(s, "=")
	if !ok {
		return wire.Limit{}, badInput("limit %q: want NAME=RATE/PERIOD[,burst=N], such as rpm=100/minute", s)
	}
	spec, burstPart, hasBurst := strings.Cut(spec, ",")
	rateS, periodS, ok := strings.Cut(spec, "/")
	if !ok {
		return wire.Limit{}, badInput("limit %q: want RATE/PERIOD, such as 100/minute", s)
	}
	rate, err := strconv.ParseInt(rateS, 10, 64)
	if err != nil {
		return wire.Limit{}, badInput("limit %q: rate %q is not a whole number", s, rateS)
	}
	period, err := parsePeriod(periodS)
	if err != nil {
		return wire.Limit{}, badInput("limit %q: %v", s, err)
	}
	l := wire.NewLimit(name, rate, rate, period)
	if hasBurst {
		v, ok := strings.CutPrefix(burstPart, "burst=")
		b, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return wire.Limit{}, badInput("limit %q: want burst=N after the comma", s)
		}
		l = l.WithBurst(b)
	}
	if err := l.Validate(); err != nil {
		return wire.Limit{}, badInput("limit %q: %v", s, err)
	}
	return l, nil
}

func parsePeriod(s string) (time.Duration, error) {
	switch s {
	case "second", "s":
		return time.Second, nil
	case "minute", "m":
		return time.Minute, nil
	case "hour", "h":
		return time.Hour, nil
	case "day", "d":
		return 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("period %q: want second, minute, hour, day or a duration such as 90s", s)
	}
	return d, nil
}

// fmtLimit writes a limit as parseLimit reads it (RATE is the refill amount).
func fmtLimit(l wire.Limit) string {
	p := l.RefillPeriod.String()
	switch l.RefillPeriod {
	case time.Second:
		p = "second"
	case time.Minute:
		p = "minute"
	case time.Hour:
		p = "hour"
	case 24 * time.Hour:
		p = "day"
	}
	s := fmt.Sprintf("%s=%d/%s", l.Name, l.RefillAmount, p)
	if l.Capacity != l.RefillAmount {
		s += fmt.Sprintf(",burst=%d", l.Capacity)
	}
	return s
}

func fmtLimits(ls []wire.Limit) string {
	if len(ls) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmtLimit(l))
	}
	return strings.Join(parts, " ")
}

// decodeStrict decodes YAML or JSON (YAML's superset) into v as JSON would, refusing unknown
// members: the file is read into generic values, then decoded strictly from their JSON.
func decodeStrict(data []byte, v any) error {
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return err
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// limitsFile reads a file of one scope's limits: {"limits": [...]} in the API's spelling, or
// the bare list.
func limitsFile(path string) ([]wire.Limit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, badInput("%v", err)
	}
	var body wire.LimitsBody
	if err := decodeStrict(data, &body); err != nil {
		var list []wire.LimitJSON
		if lerr := decodeStrict(data, &list); lerr != nil {
			return nil, badInput("%s: %v", path, err)
		}
		body.Limits = list
	}
	ls, err := body.Limiter()
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	return ls, nil
}

func limitsTable(w *tabwriter.Writer, sc wire.Scope, ls []wire.Limit) {
	fmt.Fprintln(w, "SCOPE\tLIMIT\tCAPACITY\tREFILL\tPERIOD")
	for _, l := range ls {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", scopeName(sc), l.Name, l.Capacity, l.RefillAmount, l.RefillPeriod)
	}
}

func limitsJSON(sc wire.Scope, ls []wire.Limit) map[string]any {
	return map[string]any{"scope": scopeName(sc), "limits": wire.LimitsJSON(ls)}
}

func limitsCommands() *command {
	var (
		set   scopeFlags
		specs stringList
		file  string
	)
	setCmd := &command{name: "set", summary: "Store the limits of a scope, replacing what is there.",
		long: "Limits come from --limit (repeatable) or --file, a YAML or JSON file in the API's spelling:\n" +
			"  limits:\n    - {name: rpm, rate: 100, period: minute}\n    - {name: tpm, rate: 10000, period: minute, burst: 15000}",
		flags: func(fs *flag.FlagSet) {
			set.register(fs)
			fs.Var(&specs, "limit", "NAME=RATE/PERIOD[,burst=N], such as tpm=10000/minute,burst=15000 (repeatable)")
			fs.StringVar(&file, "file", "", "YAML or JSON file of the limits instead of --limit")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) > 0 {
				return badInput("unexpected arguments %q", args)
			}
			sc, err := set.scope()
			if err != nil {
				return err
			}
			var ls []wire.Limit
			switch {
			case file != "" && len(specs) > 0:
				return badInput("give --limit or --file, not both")
			case file != "":
				if ls, err = limitsFile(file); err != nil {
					return err
				}
			case len(specs) == 0:
				return badInput("give at least one --limit, or --file")
			}
			for _, s := range specs {
				l, err := parseLimit(s)
				if err != nil {
					return err
				}
				ls = append(ls, l)
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			created, err := c.SetLimits(ctx, sc, ls)
			if err != nil {
				return err
			}
			out := limitsJSON(sc, ls)
			out["created"] = created
			return a.emit(out, func(w *tabwriter.Writer) { limitsTable(w, sc, ls) })
		}}
	var get scopeFlags
	getCmd := &command{name: "get", summary: "Show the limits stored for exactly one scope.",
		flags: get.register,
		run: func(ctx context.Context, a *app, args []string) error {
			sc, err := get.scope()
			if err != nil {
				return err
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			ls, err := c.GetLimits(ctx, sc)
			if err != nil {
				return err
			}
			return a.emit(limitsJSON(sc, ls), func(w *tabwriter.Writer) { limitsTable(w, sc, ls) })
		}}
	var del scopeFlags
	delCmd := &command{name: "delete", summary: "Delete the limits stored for a scope.",
		flags: del.register,
		run: func(ctx context.Context, a *app, args []string) error {
			sc, err := del.scope()
			if err != nil {
				return err
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			if err := c.DeleteLimits(ctx, sc); err != nil {
				return err
			}
			return a.emit(map[string]any{"deleted": scopeName(sc)}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted %s\n", scopeName(sc)) })
		}}
	return &command{name: "limits", summary: "Stored limits: set, get, delete; plan and apply a file of them.", sub: []*command{
		setCmd, getCmd, delCmd, planCommand(false), planCommand(true),
	}}
}

// LimitsFile is the declarative file of `zl limits plan|apply`: the stored limits wanted at
// every scope it names. A scope given an empty list is to be deleted; scopes it does not name
// are left alone (the API cannot list every scope).
type LimitsFile struct {
	System    []wire.LimitJSON                       `json:"system,omitempty"`
	Resources map[string][]wire.LimitJSON            `json:"resources,omitempty"`
	Entities  map[string]map[string][]wire.LimitJSON `json:"entities,omitempty"` // entity -> resource ("_default_": its default) -> limits
}

func readLimitsFile(path string) ([]wire.Scope, map[wire.Scope][]wire.Limit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	// Decoded twice: strictly for the shape, generically to tell "system: []" from absent.
	var f LimitsFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, nil, badInput("%s: %v", path, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, nil, badInput("%s: %v", path, err)
	}
	want := map[wire.Scope][]wire.LimitJSON{}
	if _, ok := raw["system"]; ok {
		want[wire.SystemDefault()] = f.System
	}
	for r, ls := range f.Resources {
		want[wire.ResourceDefault(r)] = ls
	}
	for e, byRes := range f.Entities {
		for r, ls := range byRes {
			sc := wire.EntityResource(e, r)
			if r == defaultResource {
				sc = wire.EntityDefault(e)
			}
			want[sc] = ls
		}
	}
	scopes := make([]wire.Scope, 0, len(want))
	out := make(map[wire.Scope][]wire.Limit, len(want))
	for sc, ls := range want {
		scopes = append(scopes, sc)
		if len(ls) == 0 {
			out[sc] = nil
			continue
		}
		lim, err := wire.LimitsBody{Limits: ls}.Limiter()
		if err != nil {
			return nil, nil, badInput("%s: %s: %v", path, scopeName(sc), err)
		}
		out[sc] = lim
	}
	sort.Slice(scopes, func(i, j int) bool { return scopeName(scopes[i]) < scopeName(scopes[j]) })
	return scopes, out, nil
}

// change is one line of a plan.
type change struct {
	Scope  string           `json:"scope"`
	Action string           `json:"action"` // create, update, delete, unchanged
	Before []wire.LimitJSON `json:"before,omitempty"`
	After  []wire.LimitJSON `json:"after,omitempty"`
	scope  wire.Scope
	want   []wire.Limit
	have   []wire.Limit
}

// plan compares the file's scopes with what is stored.
func plan(ctx context.Context, c *client.Client, scopes []wire.Scope, want map[wire.Scope][]wire.Limit) ([]change, error) {
	out := make([]change, 0, len(scopes))
	for _, sc := range scopes {
		have, err := c.GetLimits(ctx, sc)
		if errors.Is(err, wire.ErrLimitsNotFound) {
			have, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", scopeName(sc), err)
		}
		ch := change{Scope: scopeName(sc), scope: sc, want: want[sc], have: have}
		switch {
		case have == nil && want[sc] == nil:
			ch.Action = "unchanged"
		case have == nil:
			ch.Action = "create"
		case want[sc] == nil:
			ch.Action = "delete"
		case slices.Equal(have, want[sc]):
			ch.Action = "unchanged"
		default:
			ch.Action = "update"
		}
		if have != nil {
			ch.Before = wire.LimitsJSON(have)
		}
		if want[sc] != nil {
			ch.After = wire.LimitsJSON(want[sc])
		}
		out = append(out, ch)
	}
	return out, nil
}

func planCommand(apply bool) *command {
	var detailed bool
	name, summary := "plan", "Show how the stored limits differ from a file of limits (all scopes)."
	if apply {
		name, summary = "apply", "Make the stored limits what a file of limits says (idempotent)."
	}
	return &command{name: name, args: "FILE", summary: summary,
		long: "FILE (YAML or JSON) names the limits wanted per scope; scopes it does not name are left alone,\n" +
			"and a scope given an empty list is deleted:\n" +
			"  system:\n    - {name: rpm, rate: 1000, period: minute}\n" +
			"  resources:\n    gpt-4:\n      - {name: tpm, rate: 100000, period: minute}\n" +
			"  entities:\n    key-1:\n      _default_: [{name: rpm, rate: 60, period: minute}]\n" +
			"      gpt-4: [{name: tpm, rate: 5000, period: minute, burst: 10000}]\n" +
			"Entities must exist. apply writes only the scopes that differ; a second apply changes nothing.",
		flags: func(fs *flag.FlagSet) {
			if !apply {
				fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 6 when there are changes to apply")
			}
		},
		run: func(ctx context.Context, a *app, args []string) error {
			path, err := oneID(args, "file")
			if err != nil {
				return err
			}
			scopes, want, err := readLimitsFile(path)
			if err != nil {
				return err
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			changes, err := plan(ctx, c, scopes, want)
			if err != nil {
				return err
			}
			pending := 0
			for i := range changes {
				ch := &changes[i]
				if ch.Action == "unchanged" {
					continue
				}
				pending++
				if !apply {
					continue
				}
				if ch.Action == "delete" {
					err = c.DeleteLimits(ctx, ch.scope)
				} else {
					_, err = c.SetLimits(ctx, ch.scope, ch.want)
				}
				if err != nil {
					return fmt.Errorf("%s: %s: %w (changes before it were applied)", ch.Scope, ch.Action, err)
				}
			}
			err = a.emit(map[string]any{"changes": changes, "pending": pending, "applied": apply}, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SCOPE\tACTION\tSTORED\tWANTED")
				for _, ch := range changes {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ch.Scope, ch.Action, fmtLimits(ch.have), fmtLimits(ch.want))
				}
				verb := "to apply"
				if apply {
					verb = "applied"
				}
				fmt.Fprintf(w, "\n%d of %d scopes %s.\n", pending, len(changes), verb)
			})
			if err == nil && detailed && pending > 0 {
				return errChangesPending
			}
			return err
		}}
}
