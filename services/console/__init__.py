"""The console: pages for people (staff, supervisors, kiosks, residents) in front of the other services.

In the role of nameko-examples' gateway: it keeps its own accounts, sessions and audit trail, renders
server-side HTML, and calls the other services over their HTTP APIs with the signed-in person's identity,
never their databases.
"""
