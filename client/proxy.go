package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxProxyBody bounds a request body the signing proxy reads in order to sign it.
const MaxProxyBody = 1 << 20

// NewSigningProxy returns a reverse proxy to the API at baseURL that signs every request with
// SigV4 (service execute-api) with creds in region: what a browser cannot do for an
// IAM-authorized API, so that it can open the usage dashboard (`zl proxy`). The browser's
// cookies, Authorization, Origin and Referer are dropped. Whoever reaches the proxy acts with
// creds: serve it on loopback only.
func NewSigningProxy(baseURL string, creds aws.CredentialsProvider, region string) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(baseURL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("client: proxy target %q must be http(s)://host[:port][/path]", baseURL)
	}
	p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host
	}}
	if creds != nil {
		if region == "" {
			return nil, errors.New("client: signing needs a region")
		}
		p.Transport = &signer{base: http.DefaultTransport, creds: aws.NewCredentialsCache(creds), region: region, v4: v4.NewSigner()}
	}
	return p, nil
}

// signer signs each request before it leaves.
type signer struct {
	base   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	v4     *v4.Signer
}

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxProxyBody+1))
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		if len(body) > MaxProxyBody {
			return nil, fmt.Errorf("request body over %d bytes", MaxProxyBody)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
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
