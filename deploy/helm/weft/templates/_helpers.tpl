{{/* The name of every object of the release. */}}
{{- define "weft.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "weft.labels" -}}
{{ include "weft.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* image renders repository:tag or repository@digest; arg: (list . .Values.image). */}}
{{- define "weft.image" -}}
{{- $root := index . 0 }}{{ $img := index . 1 }}
{{- if $img.digest }}{{ $img.repository }}@{{ $img.digest }}
{{- else }}{{ $img.repository }}:{{ $img.tag | default $root.Chart.AppVersion }}{{ end }}
{{- end }}

{{/* The Service's DNS name, the control plane's address and the webhook's. */}}
{{- define "weft.serviceHost" -}}
{{ include "weft.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end }}

{{- define "weft.caSecret" -}}{{ include "weft.fullname" . }}-mesh-ca{{- end }}
{{- define "weft.injectorSecret" -}}{{ include "weft.fullname" . }}-injector-tls{{- end }}
