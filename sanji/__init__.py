"""The composition root: the `sanji` command, which knows every service.

The kernel (`shared/`) imports no service and the services import only the kernel; what needs to know all
of them (serving a service by name, writing every API document, the admin commands that reach into one
service's store) lives here, above both. import-linter checks the direction (`make lint`).
"""
