{{/* The release's base name. */}}
{{- define "crm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "crm.labels" -}}
app.kubernetes.io/part-of: crm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one service ("name" in the dict). */}}
{{- define "crm.selector" -}}
app.kubernetes.io/name: crm
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "crm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret holding the credentials. */}}
{{- define "crm.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "crm.fullname" .)) -}}
{{- end -}}

{{/* The database and Redis URLs: given, or the trial servers'. */}}
{{- define "crm.databaseUrl" -}}
{{- if .Values.secrets.databaseUrl -}}
{{- .Values.secrets.databaseUrl -}}
{{- else if .Values.trial.postgres.enabled -}}
{{- printf "postgres://postgres:%s@%s-postgres:5432/crm" .Values.trial.postgres.password (include "crm.fullname" .) -}}
{{- end -}}
{{- end -}}
{{- define "crm.redisUrl" -}}
{{- if .Values.secrets.redisUrl -}}
{{- .Values.secrets.redisUrl -}}
{{- else if .Values.trial.redis.enabled -}}
{{- printf "redis://%s-redis:6379" (include "crm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* crm.toml: the chart's settings; every service reaches the others by their Services. */}}
{{- define "crm.configToml" -}}
{{- $root := . -}}
[telemetry]
log_format = {{ .Values.config.telemetry.log_format | quote }}
log_filter = {{ .Values.config.telemetry.log_filter | quote }}
otlp_endpoint = {{ .Values.otlp.endpoint | quote }}

[auth]
issuer = {{ .Values.config.auth.issuer | quote }}
signing_key_id = {{ .Values.config.auth.signing_key_id | quote }}
{{- with .Values.config.auth.verification_keys }}

[auth.verification_keys]
{{- range $kid, $key := . }}
{{ $kid }} = {{ $key | quote }}
{{- end }}
{{- end }}

[notifications.providers]
sms = {{ .Values.config.notifications.providers.sms | quote }}
email = {{ .Values.config.notifications.providers.email | quote }}
webhook = {{ .Values.config.notifications.providers.webhook | quote }}
{{- with .Values.config.gateway }}{{ with .http }}

[gateway.http]
{{- if hasKey . "connect" }}
connect = {{ .connect }}
{{- end }}
{{- if hasKey . "grpc_web" }}
grpc_web = {{ .grpc_web }}
{{- end }}
{{- with .cors_origins }}
cors_origins = [{{ range $i, $o := . }}{{ if $i }}, {{ end }}{{ $o | quote }}{{ end }}]
{{- end }}
{{- if hasKey . "cors_max_age_s" }}
cors_max_age_s = {{ .cors_max_age_s }}
{{- end }}
{{- end }}{{ end }}
{{ range $name, $svc := .Values.services }}
[services.{{ $name }}]
listen = "0.0.0.0:{{ $root.Values.port }}"
url = "http://{{ include "crm.fullname" $root }}-{{ $name }}:{{ $root.Values.port }}"
{{ end }}
{{- end -}}

{{/* The environment every container gets: config file and secrets ("gateway" in the dict
     says whether the signing key is included). */}}
{{- define "crm.env" -}}
{{- $root := .root -}}
{{- $secret := .secret | default (include "crm.secretName" $root) -}}
- name: CRM_CONFIG
  value: /etc/crm/crm.toml
- name: CRM__DATABASE__URL
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: database-url } }
- name: CRM__REDIS__URL
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: redis-url } }
- name: CRM__PAGING__TOKEN_KEY
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: paging-token-key } }
{{- if .gateway }}
- name: CRM__AUTH__SIGNING_KEY
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: signing-key } }
{{- else }}
- name: CRM__AUTH__VERIFICATION_KEYS__{{ $root.Values.config.auth.signing_key_id | upper }}
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: verification-key } }
{{- end }}
{{- if .notifications }}
- name: CRM__NOTIFICATIONS__SMTP__PASSWORD
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: smtp-password, optional: true } }
- name: CRM__NOTIFICATIONS__SMS_HTTP__TOKEN
  valueFrom: { secretKeyRef: { name: {{ $secret }}, key: sms-token, optional: true } }
{{- end }}
{{- end -}}

{{/* The Secret's data (used by the release's Secret and the migration hook's). */}}
{{- define "crm.secretData" -}}
database-url: {{ include "crm.databaseUrl" . | required "secrets.databaseUrl (or trial.postgres.enabled or secrets.existingSecret) is required" | b64enc | quote }}
redis-url: {{ include "crm.redisUrl" . | required "secrets.redisUrl (or trial.redis.enabled or secrets.existingSecret) is required" | b64enc | quote }}
paging-token-key: {{ .Values.secrets.pagingTokenKey | required "secrets.pagingTokenKey is required" | b64enc | quote }}
signing-key: {{ .Values.secrets.signingKey | required "secrets.signingKey is required (crm admin generate-signing-key)" | b64enc | quote }}
verification-key: {{ .Values.secrets.verificationKey | required "secrets.verificationKey is required (the signing key's public key)" | b64enc | quote }}
smtp-password: {{ .Values.secrets.smtpPassword | b64enc | quote }}
sms-token: {{ .Values.secrets.smsToken | b64enc | quote }}
{{- end -}}
