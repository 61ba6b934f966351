using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class DhcpTests
{
    [Test]
    public void Dhcp_client_gets_an_address_default_route_and_name_server_from_the_dhcp_server()
    {
        var w = new World();
        w.Stub("stub0");
        var server = w.Stack("stub0", "10.0.0.1/24");
        var client = w.Stack("stub0", null);
        var dhcpd = new DhcpServer(server, server.FindInterface("net0")!, World.Ip("10.0.0.100"), World.Ip("10.0.0.110"), World.Ip("10.0.0.1"), 600, World.Ip("10.0.0.53"));
        using var stop = new CancellationTokenSource();
        var serving = w.Loop.Start(async () => await dhcpd.RunAsync(stop.Token));
        Assert.That(client.StartDhcp("net0/v4", out var agent).IsOk, Is.True);
        w.Scheduler.RunUntil(() => agent!.Ready.IsCompleted, 30 * Time.Second);
        var address = client.FindAddressObject("net0/v4");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(agent!.Ready.Result.IsOk, Is.True);
            Assert.That(address, Is.Not.Null);
            Assert.That(address!.Address, Is.EqualTo(World.Ip("10.0.0.100")));
            Assert.That(address.PrefixLength, Is.EqualTo(24));
            Assert.That(address.Type, Is.EqualTo(AddressType.Dhcp));
            Assert.That(client.LookupRoute(World.Ip("192.0.2.1"))!.Gateway, Is.EqualTo(World.Ip("10.0.0.1")));
            Assert.That(agent.NameServer, Is.EqualTo(World.Ip("10.0.0.53")));
            Assert.That(dhcpd.Acks, Is.EqualTo(1));
        }
        // The lease renews at T1 (300 s) by unicast and stays bound.
        w.Run(900 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(agent.State, Is.EqualTo(DhcpState.Bound));
            Assert.That(client.IsLocalAddress(World.Ip("10.0.0.100")), Is.True);
            Assert.That(dhcpd.Acks, Is.GreaterThanOrEqualTo(3));
        }
        stop.Cancel();
        w.Run(Time.Second);
        Assert.That(serving.IsCompleted, Is.True);
    }

    [Test]
    public void Dhcp_client_without_a_server_reports_a_timeout_and_keeps_trying()
    {
        var w = new World();
        w.Stub("stub0");
        var client = w.Stack("stub0", null);
        client.StartDhcp("net0", out var agent);
        w.Run(200 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(agent!.Ready.Result.Code, Is.EqualTo(IpadmStatus.DhcpIpcTimeout));
            Assert.That(agent.State, Is.EqualTo(DhcpState.Selecting));
            Assert.That(client.DeleteAddress("net0/dhcp").IsOk, Is.True);
        }
    }
}
