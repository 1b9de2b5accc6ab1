package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/zeroae/zae-limiter-go/client"
)

func proxyCommand() *command {
	var listen string
	return &command{name: "proxy", serves: true, summary: "Serve the API on this machine, signing every request with your AWS credentials.",
		long: "A SigV4-signing reverse proxy for the IAM-authorized API of a deployed stack, so that a browser\n" +
			"can open its usage dashboard: run `zl proxy --stack NAME` and open http://127.0.0.1:8081/v1/system/dashboard.\n" +
			"Keep it on loopback: whoever reaches it acts with your credentials.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve on (port 0 picks a free one)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			ep, err := a.resolveEndpoint(ctx)
			if err != nil {
				return err
			}
			sign, err := a.shouldSign(ep)
			if err != nil {
				return err
			}
			var creds aws.CredentialsProvider
			region := ""
			if sign {
				cfg, err := a.newAWSConfig(ctx, a.region, a.profile)
				if err != nil {
					return err
				}
				if cfg.Credentials == nil || cfg.Region == "" {
					return badInput("signing needs AWS credentials and a region (--region, AWS_REGION)")
				}
				creds, region = cfg.Credentials, cfg.Region
			}
			proxy, err := client.NewSigningProxy(ep, creds, region)
			if err != nil {
				return badInput("%v", err)
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return badInput("--listen %q: %v", listen, err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				fmt.Fprintf(a.stderr, "zl: warning: %s is not loopback; anyone who reaches it acts with your credentials\n", listen)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stdout, "proxying http://%s -> %s (signed: %v)\ndashboard: http://%s/v1/system/dashboard\n", ln.Addr(), ep, sign, ln.Addr())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
				<-done
				return nil
			case err := <-done:
				return err
			}
		}}
}
