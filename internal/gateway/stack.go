package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// Config is what the local stack is built from.
type Config struct {
	DynamoDB storage.Client // a *dynamodb.Client
	Table    string
	// Log is the functions' logger; AccessLog gets one line per request (nil: none).
	Log       *slog.Logger
	AccessLog *slog.Logger
	// LimiterOptions are added to each function's limiter (such as limiter.WithCacheTTL).
	LimiterOptions []limiter.Option
}

// Functions returns the acquire and admin functions as lambda.Start would run them, each with
// a limiter of its own, as two Lambda functions have.
func Functions(cfg Config) []Function {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := append([]limiter.Option{limiter.WithLogger(log)}, cfg.LimiterOptions...)
	return []Function{
		{Name: acquireapi.Name, Handler: lambda.NewHandler(acquireapi.New(limiter.New(cfg.DynamoDB, cfg.Table, opts...), log))},
		{Name: adminapi.Name, Handler: lambda.NewHandler(adminapi.ForLimiter(limiter.New(cfg.DynamoDB, cfg.Table, opts...), usage.NewTableReader(cfg.DynamoDB, cfg.Table), log))},
	}
}

// NewStack returns the gateway in front of both functions.
func NewStack(cfg Config) *Gateway {
	access := cfg.AccessLog
	if access == nil {
		access = slog.New(slog.DiscardHandler)
	}
	return New(access, Routes(), Functions(cfg)...)
}

// Server is an HTTP server on a listening socket.
type Server struct {
	URL  string // http://host:port
	srv  *http.Server
	done chan error
}

// ReadTimeout is how long the gateway waits for a whole request, body included, by default:
// API Gateway's own integration timeout. A client that sends its body slowly, or stops, gets a
// 408 and the connection is closed, instead of holding it forever.
const ReadTimeout = 30 * time.Second

// ListenOption changes how Listen serves.
type ListenOption func(*http.Server)

// WithReadTimeout sets the time allowed to read a whole request (ReadTimeout by default).
func WithReadTimeout(d time.Duration) ListenOption {
	return func(s *http.Server) { s.ReadTimeout = d }
}

// Listen serves h on addr ("127.0.0.1:0" picks a free port) until Shutdown.
func Listen(addr string, h http.Handler, opts ...ListenOption) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: ReadTimeout, IdleTimeout: 2 * time.Minute}
	for _, o := range opts {
		o(srv)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), done: make(chan error, 1), srv: srv}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Shutdown stops accepting requests and waits for those under way, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return <-s.done
}
