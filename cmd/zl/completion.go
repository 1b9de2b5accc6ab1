package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// leafFlags returns the flags of a command, globals included, as --name.
func leafFlags(c *command) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	(&app{}).globalFlags(fs)
	if c.flags != nil {
		c.flags(fs)
	}
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	sort.Strings(out)
	return append(out, "--help")
}

func names(cs []*command) string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.name)
	}
	return strings.Join(out, " ")
}

// writeBash writes a bash completion function: commands, subcommands, then the flags of the
// command named.
func writeBash(w io.Writer, root *command) {
	fmt.Fprintf(w, "# bash completion for zl: source <(zl completion bash)\n_zl() {\n")
	fmt.Fprintf(w, "  local cur=${COMP_WORDS[COMP_CWORD]} words=\"\"\n")
	fmt.Fprintf(w, "  case \"${COMP_WORDS[1]} ${COMP_WORDS[2]}\" in\n")
	for _, c := range root.sub {
		if c.sub == nil {
			fmt.Fprintf(w, "    \"%s \"*) words=%q ;;\n", c.name, strings.Join(leafFlags(c), " "))
			continue
		}
		for _, s := range c.sub {
			fmt.Fprintf(w, "    \"%s %s\") words=%q ;;\n", c.name, s.name, strings.Join(leafFlags(s), " "))
		}
		fmt.Fprintf(w, "    \"%s \"*) words=%q ;;\n", c.name, names(c.sub))
	}
	fmt.Fprintf(w, "  esac\n  if [ \"$COMP_CWORD\" -eq 1 ]; then words=%q; fi\n", names(root.sub)+" --help")
	fmt.Fprintf(w, "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -o default -F _zl zl\n")
}

// writeFish writes fish completions.
func writeFish(w io.Writer, root *command) {
	fmt.Fprintln(w, "# fish completion for zl: zl completion fish | source")
	for _, c := range root.sub {
		fmt.Fprintf(w, "complete -c zl -f -n '__fish_use_subcommand' -a %s -d %q\n", c.name, c.summary)
		for _, s := range c.sub {
			fmt.Fprintf(w, "complete -c zl -f -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %q\n",
				c.name, names(c.sub), s.name, s.summary)
		}
	}
	seen := map[string]bool{}
	var walk func(c *command)
	walk = func(c *command) {
		if c.sub == nil {
			for _, f := range leafFlags(c) {
				if !seen[f] {
					seen[f] = true
					fmt.Fprintf(w, "complete -c zl -l %s\n", strings.TrimPrefix(f, "--"))
				}
			}
		}
		for _, s := range c.sub {
			walk(s)
		}
	}
	walk(root)
}

func completionCommand() *command {
	return &command{name: "completion", args: "bash|zsh|fish", summary: "Print a shell completion script.",
		long: "bash: source <(zl completion bash)\nzsh:  source <(zl completion zsh)\nfish: zl completion fish | source",
		run: func(ctx context.Context, a *app, args []string) error {
			shell, err := oneID(args, "shell (bash, zsh or fish)")
			if err != nil {
				return err
			}
			root := commands()
			switch shell {
			case "bash":
				writeBash(a.stdout, root)
			case "zsh":
				fmt.Fprintln(a.stdout, "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit")
				writeBash(a.stdout, root)
			case "fish":
				writeFish(a.stdout, root)
			default:
				return badInput("shell must be bash, zsh or fish, got %q", shell)
			}
			return nil
		}}
}
