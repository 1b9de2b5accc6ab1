package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/faultproxy"
)

// env is what the scenarios run against: the local stack's URL, a client straight to DynamoDB
// (never through the proxy) to check what was really written, and the proxy itself.
type env struct {
	url    string
	table  string
	direct *dynamodb.Client
	proxy  *faultproxy.Proxy
	stack  *stackProcess
}

// stackProcess is the local stack (cmd/devstack's binary) running as a child process, so it can
// be killed like a Lambda sandbox and started again.
type stackProcess struct {
	bin, table, ddbURL string
	port               int
	cmd                *exec.Cmd
	logPath            string
}

// start runs the stack and waits until it answers HTTP.
func (s *stackProcess) start(ctx context.Context) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-port", strconv.Itoa(s.port), "-table", s.table, "-aggregate=false", "-log-level", "WARN")
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB="+s.ddbURL, "AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	url := s.url()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited while starting (%v); log: %s", s.bin, err, s.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(url + "/v1/entities/loadtest-probe")
		if err == nil {
			resp.Body.Close()
			go func() { <-exited }()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer on %s within 60 s; log: %s", s.bin, url, s.logPath)
}

// kill stops the stack at once (SIGKILL): requests under way are cut, nothing is flushed.
func (s *stackProcess) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	s.cmd = nil
}

func (s *stackProcess) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// directClient returns a DynamoDB client for endpoint with local credentials.
func directClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:                          "us-east-1",
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
	})
}

// serveProxy serves p on a free loopback port and returns its URL.
func serveProxy(p *faultproxy.Proxy) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "loadtest: proxy:", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
