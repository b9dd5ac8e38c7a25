{{/* The chart name. */}}
{{- define "zonefleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: release and chart, unless the release already holds the chart name. */}}
{{- define "zonefleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "zonefleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zonefleet
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component. Call with (list . "component"). */}}
{{- define "zonefleet.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "zonefleet.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* An image reference. Call with (list . .Values.x.image). */}}
{{- define "zonefleet.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* Pod security context: Pod Security "restricted". */}}
{{- define "zonefleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: Pod Security "restricted". */}}
{{- define "zonefleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* The Secret with the NATS credentials. */}}
{{- define "zonefleet.natsSecret" -}}
{{- if .Values.nats.bundled.enabled }}
{{- printf "%s-nats" (include "zonefleet.fullname" .) }}
{{- else }}
{{- required "nats.external.existingSecret is required when nats.bundled.enabled is false" .Values.nats.external.existingSecret }}
{{- end }}
{{- end }}

{{/* The NATS URL. */}}
{{- define "zonefleet.natsUrl" -}}
{{- if .Values.nats.bundled.enabled }}
{{- printf "nats://%s-nats.%s.svc:4222" (include "zonefleet.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "nats.external.url is required when nats.bundled.enabled is false" .Values.nats.external.url }}
{{- end }}
{{- end }}

{{/* The environment that connects a Zonefleet process to NATS. */}}
{{- define "zonefleet.natsEnv" -}}
- name: NATS_URL
  value: {{ include "zonefleet.natsUrl" . | quote }}
- name: ZONEFLEET_NATS_PREFIX
  value: {{ .Values.nats.prefix | quote }}
- name: NATS_USER
  valueFrom: {secretKeyRef: {name: {{ include "zonefleet.natsSecret" . }}, key: user, optional: true}}
- name: NATS_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "zonefleet.natsSecret" . }}, key: password, optional: true}}
{{- if not .Values.nats.bundled.enabled }}
- name: NATS_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "zonefleet.natsSecret" . }}, key: token, optional: true}}
{{- end }}
{{- if and (not .Values.nats.bundled.enabled) .Values.nats.external.tls.secret }}
- name: NATS_TLS_CA
  value: /etc/zonefleet/nats-tls/ca.crt
{{- if .Values.nats.external.tls.clientCertificate }}
- name: NATS_TLS_CERT
  value: /etc/zonefleet/nats-tls/tls.crt
- name: NATS_TLS_KEY
  value: /etc/zonefleet/nats-tls/tls.key
{{- end }}
{{- end }}
{{- if .Values.nats.messageKey.existingSecret }}
- name: ZONEFLEET_MESSAGE_KEY_FILE
  value: /etc/zonefleet/message-key/key
{{- end }}
{{- end }}

{{/* Volumes for NATS TLS and the message key. */}}
{{- define "zonefleet.natsVolumes" -}}
{{- if and (not .Values.nats.bundled.enabled) .Values.nats.external.tls.secret }}
- name: nats-tls
  secret: {secretName: {{ .Values.nats.external.tls.secret }}}
{{- end }}
{{- if .Values.nats.messageKey.existingSecret }}
- name: message-key
  secret: {secretName: {{ .Values.nats.messageKey.existingSecret }}}
{{- end }}
{{- end }}

{{- define "zonefleet.natsVolumeMounts" -}}
{{- if and (not .Values.nats.bundled.enabled) .Values.nats.external.tls.secret }}
- {name: nats-tls, mountPath: /etc/zonefleet/nats-tls, readOnly: true}
{{- end }}
{{- if .Values.nats.messageKey.existingSecret }}
- {name: message-key, mountPath: /etc/zonefleet/message-key, readOnly: true}
{{- end }}
{{- end }}

{{/* Spread over nodes. Call with (list . "component"). */}}
{{- define "zonefleet.topologySpread" -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "zonefleet.selector" . | nindent 6 }}
{{- end }}
