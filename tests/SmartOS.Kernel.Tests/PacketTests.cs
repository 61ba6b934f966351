namespace SmartOS.Kernel.Tests;

public class PacketPoolTests
{
    [Test]
    public void Freed_packet_is_reused_by_the_next_rent()
    {
        var pool = new PacketPool();
        var p = pool.Rent(100)!;
        p.Free();
        var q = pool.Rent(200)!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(q, Is.SameAs(p));
            Assert.That(q.Length, Is.EqualTo(200));
            Assert.That(q.Offset, Is.EqualTo(Packet.Headroom));
            Assert.That(pool.Allocated, Is.EqualTo(1));
            Assert.That(pool.Outstanding, Is.EqualTo(1));
        }
    }

    [Test]
    public void Rent_resets_metadata_left_by_the_previous_owner()
    {
        var pool = new PacketPool();
        var p = pool.Rent(100)!;
        p.Vid = 12; p.Pcp = 5; p.Timestamp = 99;
        Assert.That(p.TryPrepend(4), Is.True);
        p.Free();

        var q = pool.Rent(60)!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(q.Vid, Is.Zero);
            Assert.That(q.Pcp, Is.Zero);
            Assert.That(q.Timestamp, Is.Zero);
            Assert.That(q.Offset, Is.EqualTo(Packet.Headroom));
        }
    }

    [TestCase(60, PacketPool.SmallSize)]
    [TestCase(PacketPool.SmallSize, PacketPool.SmallSize)]
    [TestCase(PacketPool.SmallSize + 1, PacketPool.LargeSize)]
    [TestCase(9018, PacketPool.LargeSize)]
    [TestCase(PacketPool.LargeSize, PacketPool.LargeSize)]
    public void Rent_picks_the_size_class_that_fits(int length, int capacity)
    {
        var p = new PacketPool().Rent(length)!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Capacity, Is.EqualTo(capacity));
            Assert.That(p.Length, Is.EqualTo(length));
        }
    }

    [Test]
    public void Rent_larger_than_a_jumbo_frame_returns_null()
    {
        Assert.That(new PacketPool().Rent(PacketPool.LargeSize + 1), Is.Null);
    }

    [Test]
    public void Size_classes_keep_separate_free_lists()
    {
        var pool = new PacketPool();
        var small = pool.Rent(100)!;
        var large = pool.Rent(5000)!;
        small.Free();
        large.Free();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Rent(4000), Is.SameAs(large));
            Assert.That(pool.Rent(64), Is.SameAs(small));
        }
    }

    [Test]
    public void Rent_past_the_limit_returns_null_and_counts_exhausted()
    {
        var pool = new PacketPool(limit: 3);
        var held = new[] { pool.Rent(60), pool.Rent(60), pool.Rent(60) };

        var none = pool.Rent(60);
        var none2 = pool.Rent(60);
        var large = pool.Rent(4000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(held, Has.All.Not.Null);
            Assert.That(none, Is.Null);
            Assert.That(none2, Is.Null);
            Assert.That(pool.Exhausted, Is.EqualTo(2));
            Assert.That(large, Is.Not.Null, "the limit is per size class");
        }

        held[0]!.Free();
        Assert.That(pool.Rent(60), Is.SameAs(held[0]));
    }

    [Test]
    public void Double_free_never_hands_one_buffer_to_two_owners()
    {
        var pool = new PacketPool();
        var p = pool.Rent(60)!;
        p.Free();
        try
        {
            p.Free();
        }
        catch (Exception e) when (e.GetType().Name == "DebugAssertException")
        {
            // Debug builds assert (a programming error); release builds ignore the second free.
        }

        var a = pool.Rent(60);
        var b = pool.Rent(60);

        Assert.That(a, Is.Not.SameAs(b));
    }

    [Test]
    public void Rent_with_a_frame_copies_it()
    {
        var pool = new PacketPool();
        byte[] frame = [1, 2, 3, 4, 5];
        var p = pool.Rent(frame)!;
        frame[0] = 9;

        Assert.That(p.Data.ToArray(), Is.EqualTo(new byte[] { 1, 2, 3, 4, 5 }));
    }
}

public class PacketTests
{
    [Test]
    public void TryPrepend_uses_the_headroom_and_TrimFront_gives_it_back()
    {
        var p = Packet.Unpooled([0xAA, 0xBB]);

        Assert.That(p.TryPrepend(2), Is.True);
        p.Data[0] = 1; p.Data[1] = 2;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Data.ToArray(), Is.EqualTo(new byte[] { 1, 2, 0xAA, 0xBB }));
            Assert.That(p.Offset, Is.EqualTo(Packet.Headroom - 2));
        }

        p.TrimFront(3);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Data.ToArray(), Is.EqualTo(new byte[] { 0xBB }));
            Assert.That(p.Offset, Is.EqualTo(Packet.Headroom + 1));
        }
    }

    [Test]
    public void TryPrepend_beyond_the_headroom_fails_and_changes_nothing()
    {
        var p = Packet.Unpooled([7]);

        bool ok = p.TryPrepend(Packet.Headroom + 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.False);
            Assert.That(p.Length, Is.EqualTo(1));
            Assert.That(p.Offset, Is.EqualTo(Packet.Headroom));
            Assert.That(p.TryPrepend(Packet.Headroom), Is.True);
        }
    }

    [TestCase(0, true)]
    [TestCase(PacketPool.SmallSize, true)]
    [TestCase(PacketPool.SmallSize + 1, false)]
    [TestCase(-1, false)]
    public void TrySetLength_stays_inside_the_buffer(int length, bool ok)
    {
        var p = new PacketPool().Rent(10)!;

        Assert.That(p.TrySetLength(length), Is.EqualTo(ok));
    }

    [Test]
    public void Clone_copies_bytes_and_metadata_into_a_buffer_of_the_same_pool()
    {
        var pool = new PacketPool();
        var p = pool.Rent(new byte[] { 1, 2, 3 })!;
        p.Vid = 42; p.Pcp = 3; p.Timestamp = 1234;

        var c = p.Clone()!;
        c.Data[0] = 99;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(c, Is.Not.SameAs(p));
            Assert.That(c.Data.ToArray(), Is.EqualTo(new byte[] { 99, 2, 3 }));
            Assert.That(p.Data[0], Is.EqualTo(1), "the copy shares no bytes with the original");
            Assert.That(c.Vid, Is.EqualTo(42));
            Assert.That(c.Pcp, Is.EqualTo(3));
            Assert.That(c.Timestamp, Is.EqualTo(1234));
            Assert.That(pool.Outstanding, Is.EqualTo(2));
        }
        c.Free();
        p.Free();
        Assert.That(pool.Outstanding, Is.Zero);
    }

    [Test]
    public void Clone_of_an_unpooled_packet_is_unpooled_and_has_headroom()
    {
        var p = Packet.Unpooled([5, 6]);

        var c = p.Clone()!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.Data.ToArray(), Is.EqualTo(new byte[] { 5, 6 }));
            Assert.That(c.TryPrepend(4), Is.True);
        }
        Assert.DoesNotThrow(c.Free);
    }

    [Test]
    public void Clone_returns_null_when_the_pool_is_exhausted()
    {
        var pool = new PacketPool(limit: 1);
        var p = pool.Rent(60)!;

        Assert.That(p.Clone(), Is.Null);
        Assert.That(pool.Exhausted, Is.EqualTo(1));
    }
}
