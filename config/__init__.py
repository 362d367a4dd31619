"""Project configuration: settings, URL routing, ASGI/WSGI entry points and system checks."""
