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
cat <<EOT

  The platform is starting: customers on 127.0.0.1:50052 (gRPC, with reflection and health).
  Call it with buf curl (installed under .tools/) or grpcurl, for example:

    .tools/node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:50052
    .tools/node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge \\
      -d '{"filter":{"region":"华东"},"page":{"pageSize":5}}' \\
      http://127.0.0.1:50052/crm.customers.v1.CustomerService/ListCustomers
    grpcurl -plaintext -d '{"filter":{"nameContains":"精工"}}' 127.0.0.1:50052 crm.customers.v1.CustomerService/ListCustomers

  Ctrl-C stops the services; \`make services-stop\` stops Postgres and Redis.

EOT
exec ./target/debug/crm serve all
