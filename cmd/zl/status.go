package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// stackInfo is what status shows of a CloudFormation stack.
type stackInfo struct {
	Name        string            `json:"name"`
	Status      string            `json:"status"`
	Reason      string            `json:"reason,omitempty"`
	LastUpdated time.Time         `json:"last_updated"`
	Outputs     map[string]string `json:"outputs"`
}

func (a *app) describeStack(ctx context.Context, name string) (*stackInfo, error) {
	cfg, err := a.newAWSConfig(ctx, a.region, a.profile)
	if err != nil {
		return nil, err
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return nil, &wire.UnavailableError{Op: "describe stack " + name, Err: err}
	}
	if len(out.Stacks) == 0 {
		return nil, fmt.Errorf("stack %s: %w", name, errStackNotFound)
	}
	st := out.Stacks[0]
	info := &stackInfo{Name: aws.ToString(st.StackName), Status: string(st.StackStatus), Reason: aws.ToString(st.StackStatusReason),
		Outputs: map[string]string{}}
	info.LastUpdated = aws.ToTime(st.CreationTime)
	if st.LastUpdatedTime != nil {
		info.LastUpdated = *st.LastUpdatedTime
	}
	for _, o := range st.Outputs {
		info.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return info, nil
}

var errStackNotFound = errors.New("no such stack")

func statusCommand() *command {
	return &command{name: "status", summary: "Show a deployed stack's status and outputs, and whether its API answers.",
		long: "With --stack (or ZL_STACK): the CloudFormation stack's status, last update and outputs, then a\n" +
			"probe of its API. With --endpoint only (such as `make run`'s): the probe. Exit 4 when the API\n" +
			"does not answer.",
		run: func(ctx context.Context, a *app, args []string) error {
			var st *stackInfo
			if name := a.stackName(); name != "" {
				var err error
				if st, err = a.describeStack(ctx, name); err != nil {
					return err
				}
				if a.endpoint == "" && a.getenv(envEndpoint) == "" && st.Outputs["ApiUrl"] != "" {
					a.endpoint = st.Outputs["ApiUrl"]
				}
			}
			api := map[string]any{}
			c, ep, err := a.client(ctx)
			if err != nil {
				return err
			}
			start := time.Now()
			_, perr := c.GetLimits(ctx, wire.SystemDefault())
			if errors.Is(perr, wire.ErrLimitsNotFound) {
				perr = nil // answered: nothing stored is an answer
			}
			api["endpoint"] = ep
			api["reachable"] = perr == nil
			api["latency_ms"] = time.Since(start).Milliseconds()
			if perr != nil {
				api["error"] = perr.Error()
			}
			if err := a.emit(map[string]any{"stack": st, "api": api}, func(w *tabwriter.Writer) {
				if st != nil {
					fmt.Fprintf(w, "stack\t%s\n", st.Name)
					fmt.Fprintf(w, "status\t%s\n", st.Status)
					if st.Reason != "" {
						fmt.Fprintf(w, "reason\t%s\n", st.Reason)
					}
					fmt.Fprintf(w, "last updated\t%s\n", st.LastUpdated.UTC().Format(time.RFC3339))
					keys := make([]string, 0, len(st.Outputs))
					for k := range st.Outputs {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(w, "output %s\t%s\n", k, st.Outputs[k])
					}
				}
				fmt.Fprintf(w, "api\t%s\n", ep)
				if perr == nil {
					fmt.Fprintf(w, "api answers\tyes (%d ms)\n", api["latency_ms"])
				} else {
					fmt.Fprintf(w, "api answers\tno: %v\n", perr)
				}
			}); err != nil {
				return err
			}
			return perr
		}}
}
