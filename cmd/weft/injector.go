package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/inject"
	"github.com/weft-mesh/weft/inject/webhook"
	"github.com/weft-mesh/weft/internal/logging"
)

func newInjectorCommand() *cobra.Command {
	s := webhook.Server{Inject: inject.DefaultConfig()}
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "injector --tls-cert FILE --tls-key FILE",
		Short: "Run the mutating admission webhook that injects Weft's sidecar into pods",
		Long: `Run weft injector, a Kubernetes mutating admission webhook (admission.k8s.io/v1)
that adds Weft's sidecar to pods as they are created, exactly as weft inject
does to YAML. It serves POST /mutate and GET /healthz over TLS, and reloads
its certificate when the files change (a renewed Secret).

Register it with a MutatingWebhookConfiguration (the Helm chart in
deploy/helm/weft does): pods of namespaces labelled weft.io/inject=true,
and pods labelled weft.io/inject=true elsewhere. It needs no access to
the Kubernetes API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logging.New(os.Stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			s.Logger = logger
			return s.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.Addr, "addr", ":8443", "HTTPS listen address")
	fl.StringVar(&s.CertFile, "tls-cert", "", "PEM serving certificate (required; reloaded when it changes)")
	fl.StringVar(&s.KeyFile, "tls-key", "", "PEM private key of the serving certificate (required)")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	addInjectFlags(fl, &s.Inject)
	cmd.MarkFlagRequired("tls-cert")
	cmd.MarkFlagRequired("tls-key")
	return cmd
}
