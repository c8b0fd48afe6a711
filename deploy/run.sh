#!/usr/bin/env bash
# `make run`: development Postgres and Redis, migrations, demo data, then every service in one
# process (`crm serve all`) until Ctrl-C.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash deploy/local/services.sh start run
eval "$(bash deploy/local/services.sh env run)"
bash deploy/tools.sh
cargo build --bin crm
./target/debug/crm migrate
./target/debug/crm demo-data
cat <<'EOT'

  The platform is starting. The gateway, the one entry point, is on 127.0.0.1:50051 (gRPC with
  reflection and health); customers also listens on 50052 (tokens required there too).

  Demo users, one per role, all with the password crm-demo-2026:
    admin, clerk, rep.east (华东), manager, support, agent, hotline.engineer, coordinator,
    engineer, tech.center, complaints, supervisor, finance, crm.lead, partner.sz
  and the demo customers' sales reps and tech-support partners (rep.zhang, ts.li, …).
  SMS and e-mail go to the development sink: NotificationService/ListSentMessages (admin).

  Log in and call it with buf curl (installed under .tools/) or grpcurl:

    BUF=.tools/node_modules/.bin/buf
    TOKEN=$($BUF curl --protocol grpc --http2-prior-knowledge \
      -d '{"username":"admin","password":"crm-demo-2026"}' \
      http://127.0.0.1:50051/crm.gateway.v1.AuthService/Login \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
    $BUF curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:50051
    $BUF curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $TOKEN" \
      -d '{"filter":{"region":"华东"},"page":{"pageSize":5}}' \
      http://127.0.0.1:50051/crm.customers.v1.CustomerService/ListCustomers

  Ctrl-C stops the services; `make services-stop` stops Postgres and Redis.

EOT
exec ./target/debug/crm serve all
