package webhook

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/inject"
)

// Server serves the webhook over TLS: POST /mutate (AdmissionReviews) and
// GET /healthz. It is configured by its fields; Run or Serve once.
type Server struct {
	Addr              string // listen address, e.g. ":8443"
	CertFile, KeyFile string // PEM serving certificate and key, reloaded when they change
	Inject            inject.Config
	Logger            *slog.Logger
}

// Run listens on s.Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("injector: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then lets requests in flight finish
// for up to 5 s. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	logger := cmp.Or(s.Logger, slog.Default()).With("component", "injector")
	if err := s.Inject.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("injector: %w", err)
	}
	certs, err := newCertReloader(s.CertFile, s.KeyFile, logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("injector: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", &Mutator{Config: s.Inject, Logger: logger})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{GetCertificate: certs.getCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	logger.Info("serving", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("injector: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
