"""The national clouds' sign-in and Graph addresses.

Sources: Microsoft's "National cloud deployments" page
(https://learn.microsoft.com/graph/deployments): global service login.microsoftonline.com and
graph.microsoft.com; US Government L4 (GCC High) login.microsoftonline.us and
graph.microsoft.us; China operated by 21Vianet login.chinacloudapi.cn and
microsoftgraph.chinacloudapi.cn. The settings `MS_LOGIN_BASE_URL` and `MS_GRAPH_BASE_URL`
replace them (tests, proxies); the token's scope stays the cloud's Graph, which is the
resource the token is for wherever the requests are sent.
"""

from dataclasses import dataclass

from django.conf import settings

# cloud -> (sign-in address, Graph address)
CLOUDS = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


@dataclass(frozen=True)
class Endpoints:
    login: str  # without a trailing slash
    graph: str
    scope: str  # "<the cloud's Graph>/.default": the app's granted application permissions
    login_replaced: bool
    graph_replaced: bool
    cloud_graph: str


def endpoints(cloud: str) -> Endpoints:
    login, graph = CLOUDS.get(cloud, CLOUDS["global"])
    login_override = (settings.MS_LOGIN_BASE_URL or "").strip().rstrip("/")
    graph_override = (settings.MS_GRAPH_BASE_URL or "").strip().rstrip("/")
    return Endpoints(login=login_override or login, graph=graph_override or graph,
                     scope=f"{graph}/.default", login_replaced=bool(login_override),
                     graph_replaced=bool(graph_override), cloud_graph=graph)
