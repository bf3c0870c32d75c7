"""What is written: the Kubernetes manifest bundle under `deploy/`, parsed into typed, validated objects.

The bundle is the single description of the system; everything else reads it through this
package, so a mistake in it is reported once, with file and line. Import from the module that
defines a name (`bundle`: load and check a bundle; `kinds`: every kind's validator and view;
`core`, `istio/`, `gateway/`, `kagent/`, `prometheus`: the typed views and schemas per API
group; `manifest`: one manifest and its problems), so reading one kind does not load them all.
"""
