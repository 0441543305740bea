import eventlet

eventlet.monkey_patch()  # first: nameko's fixtures and our services run on eventlet; without it tests hang
