# One image per Polyshop service: docker compose builds it with SERVICE=<name> (and the pki
# init service with BUILD_PATH=./infra/checks/cmd/pki).
# Build context: the repository root (see service.Dockerfile.dockerignore beside this file).
FROM golang:1.26-bookworm AS build
ARG SERVICE
ARG BUILD_PATH=./services/${SERVICE}
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that source edits do not re-download dependencies.
COPY go.work go.work.sum ./
COPY shared/go.mod shared/go.sum ./shared/
COPY infra/checks/go.mod infra/checks/go.sum ./infra/checks/
COPY services ./services-mods
RUN set -eu; for d in services-mods/*/; do n=$(basename "$d"); mkdir -p "services/$n"; \
      cp "$d/go.mod" "services/$n/"; [ -f "$d/go.sum" ] && cp "$d/go.sum" "services/$n/" || true; done; \
    rm -rf services-mods; go mod download
COPY shared ./shared
COPY infra/checks ./infra/checks
COPY services ./services
RUN go build -ldflags="-s -w" -o /out/service "${BUILD_PATH}"

FROM alpine:3.20
# /tls: where the tls volume (mutual TLS certificates, made by the pki service) is mounted;
# owned by the service user so that the empty volume takes that owner.
RUN adduser -D -H -u 10001 polyshop && mkdir /tls && chown polyshop /tls
USER polyshop
COPY --from=build /out/service /usr/local/bin/service
ENTRYPOINT ["/usr/local/bin/service"]
