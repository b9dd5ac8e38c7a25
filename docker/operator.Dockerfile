# The operator image: built from the workspace, run as a non-root numeric user on a distroless
# base (glibc, CA certificates, no shell, no package manager).
#   docker build -f docker/operator.Dockerfile -t ghcr.io/zonefleet/operator:0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p zonefleet-operator --bin zonefleet-operator \
 && cp target/release/zonefleet-operator /zonefleet-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /zonefleet-operator /zonefleet-operator
USER 65532:65532
ENTRYPOINT ["/zonefleet-operator"]
