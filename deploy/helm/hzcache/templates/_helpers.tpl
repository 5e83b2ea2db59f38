{{/* Resource name of the companion and its Service. */}}
{{- define "hzcache.fullname" -}}
{{- $name := default "hzcache" .Values.nameOverride -}}
{{- printf "%s-companion" $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hzcache.labels" -}}
app.kubernetes.io/name: {{ default "hzcache" .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hzcache.selectorLabels" -}}
app: {{ include "hzcache.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The companion Service's host, as the mesh names it. */}}
{{- define "hzcache.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "hzcache.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "hzcache.secretName" -}}
{{- if .Values.credentials.create -}}
{{- printf "%s-credentials" (default "hzcache" .Values.nameOverride) -}}
{{- else -}}
{{- required "credentials.existingSecret: name the Secret holding the callout secret, or set credentials.create" .Values.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Hazelcast members: the value given, or the Service the official chart creates
     (its fullname: the release name if it contains "hazelcast", else RELEASE-hazelcast). */}}
{{- define "hzcache.hazelcast" -}}
{{- if .Values.cache.hazelcast -}}
{{- .Values.cache.hazelcast -}}
{{- else if .Values.hazelcast.enabled -}}
{{- $svc := "" -}}
{{- if .Values.hazelcast.fullnameOverride -}}
{{- $svc = .Values.hazelcast.fullnameOverride -}}
{{- else if contains "hazelcast" .Release.Name -}}
{{- $svc = .Release.Name -}}
{{- else -}}
{{- $svc = printf "%s-hazelcast" .Release.Name -}}
{{- end -}}
{{- printf "%s.%s.svc.%s:5701" ($svc | trunc 63 | trimSuffix "-") .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- fail "cache.hazelcast: name the Hazelcast members (HOST:PORT[,...]), or set hazelcast.enabled to install them" -}}
{{- end -}}
{{- end -}}

{{/* "ns/name" -> the Istio principal. */}}
{{- define "hzcache.principals" -}}
{{- $td := .root.Values.access.trustDomain -}}
{{- range .accounts }}
{{- $parts := splitList "/" . }}
{{- if ne (len $parts) 2 }}{{ fail (printf "access: %q is not NAMESPACE/SERVICEACCOUNT" .) }}{{ end }}
- {{ printf "%s/ns/%s/sa/%s" $td (index $parts 0) (index $parts 1) | quote }}
{{- end }}
{{- end -}}

{{- define "hzcache.companionImage" -}}
{{- $img := .Values.companion.image -}}
{{- if $img.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" $img.digest) }}{{ fail "companion.image.digest must be sha256:<64 hex>" }}{{ end -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}
