from django.shortcuts import render

from .access import public


@public
def forbidden(request, exception=None):
    return render(request, "403.html", status=403)


@public
def not_found(request, exception=None):
    return render(request, "404.html", status=404)


@public
def server_error(request):
    # No context processors that touch the database: the database may be what failed.
    from django.http import HttpResponseServerError
    from django.template import loader

    return HttpResponseServerError(loader.get_template("500.html").render())
