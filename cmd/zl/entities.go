package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// commands returns the command tree.
func commands() *command {
	return &command{name: "zl", long: "zl manages a zae-limiter deployment: entities, stored limits, usage and the audit trail.",
		sub: []*command{
			entityCommands(),
			limitsCommands(),
			availableCommand(),
			acquireCommand(),
			usageCommand(),
			auditCommand(),
			statusCommand(),
			proxyCommand(),
			completionCommand(),
		}}
}

// entityJSON is an entity in --output json: the API's form, and for create/update whether it
// was new.
type entityJSON struct {
	wire.EntityJSON
	Created *bool `json:"created,omitempty"`
}

func toEntityJSON(e *wire.Entity) entityJSON { return entityJSON{EntityJSON: e.JSON()} }

func entityTable(w *tabwriter.Writer, es []entityJSON) {
	fmt.Fprintln(w, "ID\tNAME\tPARENT\tCASCADE\tMETADATA\tUPDATED")
	for _, e := range es {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\t%s\n", e.ID, dash(e.Name), dash(e.ParentID), e.Cascade, dash(fmtMap(e.Metadata)),
			e.UpdatedAt.Format(time.RFC3339))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func oneID(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", badInput("give exactly one %s, got %d arguments", what, len(args))
	}
	return args[0], nil
}

func entityCommands() *command {
	put := func(name, summary string) *command {
		var (
			display, parent string
			cascade         bool
			meta            stringList
		)
		return &command{name: name, args: "ENTITY_ID", summary: summary,
			long: "The API's PUT: an entity that does not exist is created; one that does has its name, cascade and\n" +
				"metadata replaced (its parent is fixed at creation). Putting what is stored changes nothing.",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&display, "name", "", "display name")
				fs.StringVar(&parent, "parent", "", "parent entity (a project) of a new child (an API key)")
				fs.BoolVar(&cascade, "cascade", false, "acquires also consume from the parent by default")
				fs.Var(&meta, "meta", "metadata KEY=VALUE (repeatable)")
			},
			run: func(ctx context.Context, a *app, args []string) error {
				id, err := oneID(args, "entity id")
				if err != nil {
					return err
				}
				md := map[string]string{}
				for _, kv := range meta {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return badInput("--meta %q: want KEY=VALUE", kv)
					}
					md[k] = v
				}
				c, _, err := a.client(ctx)
				if err != nil {
					return err
				}
				e, created, err := c.PutEntity(ctx, wire.Entity{ID: id, Name: display, ParentID: parent, Cascade: cascade, Metadata: md})
				if err != nil {
					return err
				}
				j := toEntityJSON(e)
				j.Created = &created
				return a.emit(j, func(w *tabwriter.Writer) {
					entityTable(w, []entityJSON{j})
				})
			}}
	}
	get := idCommand("get", "Show an entity.", func(ctx context.Context, a *app, c *client.Client, id string) error {
		e, err := c.GetEntity(ctx, id)
		if err != nil {
			return err
		}
		j := toEntityJSON(e)
		return a.emit(j, func(w *tabwriter.Writer) { entityTable(w, []entityJSON{j}) })
	})
	del := idCommand("delete", "Delete an entity with its stored limits and buckets (not one with children).",
		func(ctx context.Context, a *app, c *client.Client, id string) error {
			if err := c.DeleteEntity(ctx, id); err != nil {
				return err
			}
			return a.emit(map[string]any{"deleted": id}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted %s\n", id) })
		})
	children := idCommand("children", "List the children of a parent entity.", func(ctx context.Context, a *app, c *client.Client, id string) error {
		kids, err := c.Children(ctx, id)
		if err != nil {
			return err
		}
		out := make([]entityJSON, 0, len(kids))
		for i := range kids {
			out = append(out, toEntityJSON(&kids[i]))
		}
		return a.emit(out, func(w *tabwriter.Writer) { entityTable(w, out) })
	})
	return &command{name: "entity", summary: "Entities: create, update, get, delete, children.", sub: []*command{
		put("create", "Create an entity (or update it if it exists)."),
		put("update", "Update an entity's name, cascade and metadata (or create it)."),
		get, del, children,
	}}
}

// idCommand is a command on one entity id with no flags of its own.
func idCommand(name, summary string, fn func(ctx context.Context, a *app, c *client.Client, id string) error) *command {
	return &command{name: name, args: "ENTITY_ID", summary: summary,
		run: func(ctx context.Context, a *app, args []string) error {
			id, err := oneID(args, "entity id")
			if err != nil {
				return err
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			return fn(ctx, a, c, id)
		}}
}
