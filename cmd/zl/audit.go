package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func auditCommand() *command {
	var (
		entity, resource string
		system, all      bool
		limit            int
	)
	return &command{name: "audit", summary: "Show the audit trail of admin changes, newest first.",
		long: "--entity: the entity's changes and its stored limits'; --resource: the resource default's;\n" +
			"--system: the system default's. Each record says who (the IAM principal), when, and the state\n" +
			"before and after.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&entity, "entity", "", "entity id")
			fs.StringVar(&resource, "resource", "", "resource (its default limits)")
			fs.BoolVar(&system, "system", false, "the system default limits")
			fs.IntVar(&limit, "limit", 20, "records to show (1 to 100 per page)")
			fs.BoolVar(&all, "all", false, "every record, following the pages")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			n := 0
			for _, b := range []bool{entity != "", resource != "", system} {
				if b {
					n++
				}
			}
			if n != 1 {
				return badInput("give one of --entity, --resource or --system")
			}
			if limit < 1 || limit > 100 {
				return badInput("--limit must be 1 to 100")
			}
			sc := wire.Scope{EntityID: entity, Resource: resource}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			var recs []wire.AuditRecord
			tok := ""
			for {
				page, err := c.AuditLog(ctx, sc, limit, tok)
				if err != nil {
					return err
				}
				recs = append(recs, page.Records...)
				if tok = page.NextToken; tok == "" || !all {
					break
				}
			}
			if recs == nil {
				recs = []wire.AuditRecord{}
			}
			return a.emit(map[string]any{"records": recs, "next_token": tok}, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "AT (UTC)\tPRINCIPAL\tACTION\tSCOPE\tVERSION\tBEFORE\tAFTER")
				for _, r := range recs {
					sc := wire.Scope{EntityID: r.EntityID, Resource: r.Resource}
					if r.Resource == defaultResource {
						sc.Resource = ""
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.At.Format(time.RFC3339Nano), r.Principal, r.Action, scopeName(sc), r.Version,
						dash(compact(r.Before)), dash(compact(r.After)))
				}
				if tok != "" {
					fmt.Fprintln(w, "\n(more: --all)")
				}
			})
		}}
}

// compact bounds a JSON value shown in a table cell.
func compact(b []byte) string {
	const n = 120
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
