package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signer signs each request with SigV4 (service execute-api) before it leaves: what a browser
// cannot do for an IAM-authorized API.
type signer struct {
	base   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	v4     *v4.Signer
}

// maxProxyBody bounds a request body the proxy reads to sign (the API accepts far less).
const maxProxyBody = 1 << 20

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxProxyBody+1))
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		if len(body) > maxProxyBody {
			return nil, errors.New("request body over 1 MiB")
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	// What the browser sent about itself is not the API's business, and not signed.
	for _, h := range []string{"Cookie", "Authorization", "Origin", "Referer"} {
		r.Header.Del(h)
	}
	creds, err := s.creds.Retrieve(r.Context())
	if err != nil {
		return nil, fmt.Errorf("retrieve AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := s.v4.SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), "execute-api", s.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return s.base.RoundTrip(r)
}

// newProxy returns a reverse proxy to target, signing requests when sign is not nil.
func newProxy(target *url.URL, sign *signer) *httputil.ReverseProxy {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
	}
	if sign != nil {
		p.Transport = sign
	}
	return p
}

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
			target, err := url.Parse(ep)
			if err != nil || target.Host == "" {
				return badInput("endpoint %q is not a URL", ep)
			}
			sign, err := a.shouldSign(ep)
			if err != nil {
				return err
			}
			var s *signer
			if sign {
				cfg, err := a.newAWSConfig(ctx, a.region, a.profile)
				if err != nil {
					return err
				}
				if cfg.Credentials == nil || cfg.Region == "" {
					return badInput("signing needs AWS credentials and a region (--region, AWS_REGION)")
				}
				s = &signer{base: http.DefaultTransport, creds: aws.NewCredentialsCache(cfg.Credentials), region: cfg.Region, v4: v4.NewSigner()}
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
			srv := &http.Server{Handler: newProxy(target, s), ReadHeaderTimeout: 10 * time.Second}
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
