"""The one page registry the view modules add their pages to."""
from gateway.portal.pages import PageRegistry

portal = PageRegistry()
page = portal.page
