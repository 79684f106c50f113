{{/*
The chart name, or nameOverride: the app.kubernetes.io/name label.
*/}}
{{- define "sidecar-kit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it contains
the chart name, else both. Object names append at most 15 characters ("-label-nodes",
"-webhook-tls", "-selfsigned"), so the prefix stops at 48.
*/}}
{{- define "sidecar-kit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The helm.sh/chart label: name and version.
*/}}
{{- define "sidecar-kit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image tag: image.tag, else the appVersion.
*/}}
{{- define "sidecar-kit.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
The image: repository@digest when a digest is given, else repository:tag. The webhook
container, SIDECAR_KIT_SHIM_IMAGE and the labeller all use it, so that the shim copied into
pods always comes from the release that wired them.
*/}}
{{- define "sidecar-kit.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "sidecar-kit.tag" .) }}
{{- end }}
{{- end }}

{{/*
Selector labels of a component: name, instance, component. They never change for an
installed release. Call with (dict "ctx" $ "component" "webhook").
*/}}
{{- define "sidecar-kit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar-kit.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of a component's pods: the selector labels, part-of, version and managed-by. No
helm.sh/chart: a new chart version alone does not roll the pods.
*/}}
{{- define "sidecar-kit.podLabels" -}}
{{ include "sidecar-kit.selectorLabels" . }}
app.kubernetes.io/part-of: sidecar-kit
app.kubernetes.io/version: {{ include "sidecar-kit.tag" .ctx | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/*
Labels of every object of a component: the pod labels and helm.sh/chart.
Call with (dict "ctx" $ "component" "webhook").
*/}}
{{- define "sidecar-kit.labels" -}}
{{ include "sidecar-kit.podLabels" . }}
helm.sh/chart: {{ include "sidecar-kit.chart" .ctx }}
{{- end }}

{{/*
Names shared by several templates.
*/}}
{{- define "sidecar-kit.profilesName" -}}
{{- printf "%s-profiles" (include "sidecar-kit.fullname" .) }}
{{- end }}

{{- define "sidecar-kit.labelNodesName" -}}
{{- printf "%s-label-nodes" (include "sidecar-kit.fullname" .) }}
{{- end }}

{{/*
The Lease the labeller takes and the webhook reads: the programs' default name (both find
it in their own namespace), so no flag is needed. It is not an object of the chart.
*/}}
{{- define "sidecar-kit.leaseName" -}}
sidecar-kit-label-nodes
{{- end }}

{{/*
The Secret with the serving certificate that the webhook mounts.
*/}}
{{- define "sidecar-kit.tlsSecretName" -}}
{{- if eq .Values.certificates.source "secret" }}
{{- required "certificates.secret.name: give the name of the Secret with tls.crt and tls.key (certificates.source is secret)" .Values.certificates.secret.name }}
{{- else }}
{{- printf "%s-webhook-tls" (include "sidecar-kit.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The DNS names by which the API server reaches the webhook's Service.
*/}}
{{- define "sidecar-kit.serviceDNSNames" -}}
{{- $svc := printf "%s.%s.svc" (include "sidecar-kit.fullname" .) .Release.Namespace }}
{{- list $svc (printf "%s.cluster.local" $svc) | toJson }}
{{- end }}

{{/*
The generated serving certificate (certificates.source generate), as YAML with the base64
values "ca.crt", "tls.crt" and "tls.key". On upgrade, the existing Secret's values are kept
(found with lookup), so the certificate and the CA bundle do not change with each upgrade;
`helm template` and `--dry-run` cannot look up, and generate a new pair each run.
The Secret and the webhook configuration both need the same pair while genCA gives a new one
each call: the first call keeps it in the root context, which the templates of one chart
share during a render.
*/}}
{{- define "sidecar-kit.generatedTLS" -}}
{{- if not (hasKey . "sidecarKitGeneratedTLS") }}
{{- $name := include "sidecar-kit.tlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $data := dict }}
{{- if $existing }}
{{- $data = $existing.data | default dict }}
{{- end }}
{{- $tls := dict }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
{{- $tls = dict "ca.crt" (index $data "ca.crt") "tls.crt" (index $data "tls.crt") "tls.key" (index $data "tls.key") }}
{{- else }}
{{- $days := int .Values.certificates.generate.validityDays }}
{{- $ca := genCA (printf "%s-ca" (include "sidecar-kit.fullname" .)) $days }}
{{- $dns := include "sidecar-kit.serviceDNSNames" . | fromJsonArray }}
{{- $cert := genSignedCert (first $dns) nil $dns $days $ca }}
{{- $tls = dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) }}
{{- end }}
{{- $_ := set . "sidecarKitGeneratedTLS" $tls }}
{{- end }}
{{- index . "sidecarKitGeneratedTLS" | toYaml }}
{{- end }}

{{/*
clientConfig.caBundle of the webhook, or nothing where cert-manager's CA injector writes it.
*/}}
{{- define "sidecar-kit.caBundle" -}}
{{- if eq .Values.certificates.source "generate" }}
{{- index (include "sidecar-kit.generatedTLS" . | fromYaml) "ca.crt" }}
{{- else if eq .Values.certificates.source "secret" }}
{{- required "certificates.secret.caBundle: give the base64 PEM of the CA that signed the Secret's certificate (what `sidecar-kit certs` prints)" .Values.certificates.secret.caBundle }}
{{- end }}
{{- end }}

{{/*
The webhook server's SIDECAR_KIT_FAILURE_MODE, paired with the failurePolicy as
components/fail-closed pairs them: an internal error follows what an unreachable webhook
does.
*/}}
{{- define "sidecar-kit.failureMode" -}}
{{- if eq .Values.webhook.failurePolicy "Fail" }}deny{{ else }}allow{{ end }}
{{- end }}
